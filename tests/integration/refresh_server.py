"""A small HTTPS RefreshToken endpoint for the tests (SPEC section 1), on loopback, with a
self-signed certificate made by openssl at test time.

POST /v1/Auth/RefreshToken {"AccessToken":..,"RefreshToken":..}: when RefreshToken is the one it
issued last, answers {"Result":{"AccessToken":{"Token":"acc-N","ExpiresIn":E},
"RefreshToken":"ref-N"}} and appends acc-N to `accept_file` (the simulator's --token-file), so
the new access token is the one the simulator accepts. Anything else: 401. Every request is
recorded (body as parsed JSON) for the test to check."""

import base64
import http.server
import json
import os
import shutil
import ssl
import subprocess
import threading
import time

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def make_cert(tmp):
    """A self-signed certificate for 127.0.0.1 (it is its own CA); returns (cert, key) paths."""
    if not os.path.exists(OPENSSL):
        raise AssertionError("openssl not found (Debian package 'openssl', see scripts/deps.sh)")
    cert, key = os.path.join(tmp, "refresh-cert.pem"), os.path.join(tmp, "refresh-key.pem")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True)
    return cert, key


def make_jwt(exp, signature="sig"):
    """An unsigned JWT-shaped token carrying an exp claim (the bridge only reads exp)."""
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return "%s.%s.%s" % (part({"alg": "HS256", "typ": "JWT"}), part({"sub": "t2m", "exp": exp}),
                         signature)


class RefreshServer:
    def __init__(self, tmp, accept_file, first_refresh="ref-0", expires_in=3600, jwt=False,
                 tls=True):
        self.tls = tls  # False: plain http on loopback (what SPEC 6 allows besides https)
        self.cert, self.key = make_cert(tmp) if tls else (None, None)
        self.jwt = jwt  # issue JWT-shaped access tokens whose exp claim is now + expires_in
        self.accept_file = accept_file
        self.expected = first_refresh
        self.expires_in = expires_in
        self.n = 0
        self.requests = []  # (path, content-type, parsed body)
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                status, reply = outer._answer(self.path, self.headers.get("Content-Type"), body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert, self.key)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _answer(self, path, ctype, body):
        with self.lock:
            self.requests.append((path, ctype, body))
            if (path != "/v1/Auth/RefreshToken" or not isinstance(body, dict)
                    or body.get("RefreshToken") != self.expected or not body.get("AccessToken")):
                return 401, {"Result": None, "Status": 401, "Title": "Unauthorized"}
            self.n += 1
            access, refresh = "acc-%d" % self.n, "ref-%d" % self.n
            if self.jwt:
                access = make_jwt(int(time.time()) + self.expires_in, access)
            self.expected = refresh
            with open(self.accept_file, "a") as f:
                f.write(access + "\n")
            return 200, {"Result": {"AccessToken": {"Token": access, "ExpiresIn": self.expires_in},
                                    "RefreshToken": refresh},
                         "Status": 200, "Title": "", "Errors": []}

    @property
    def url(self):
        return "%s://127.0.0.1:%d/v1/Auth/RefreshToken" % ("https" if self.tls else "http",
                                                           self.port)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
