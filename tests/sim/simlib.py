"""Helpers for tests that drive telematics-sim: start it on a free port, talk to its control
channel, and speak the upstream protocol with python3-websocket. Every wait has a deadline."""

import json
import os
import selectors
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import websocket

DEFAULT_TIMEOUT = 10.0


class SimError(Exception):
    pass


def wait_for(pred, timeout=DEFAULT_TIMEOUT, what="condition", interval=0.02):
    """Polls pred() until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SimError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Sim:
    """A running telematics-sim. Use as a context manager, or call stop()."""

    def __init__(self, binary, *args, host="127.0.0.1"):
        self.stderr_file = tempfile.NamedTemporaryFile(prefix="sim-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([binary, "--port", "0", "--host", host, *args],
                                     stdout=subprocess.PIPE, stderr=self.stderr_file,
                                     stdin=subprocess.DEVNULL)
        self.host = host
        line = self._read_line(DEFAULT_TIMEOUT)
        prefix = "telematics-sim: listening on "
        if not line.startswith(prefix):
            self.stop()
            raise SimError(f"unexpected first line {line!r}; stderr: {self.stderr_text()}")
        self.port = int(line[len(prefix):].rsplit(":", 1)[1])

    def _read_line(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        buf = b""
        while not buf.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise SimError(f"no listening line; stderr: {self.stderr_text()}")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                raise SimError(f"sim exited early; stderr: {self.stderr_text()}")
            buf += chunk
        sel.close()
        return buf.decode().strip()

    def stderr_text(self):
        with open(self.stderr_file.name, "r", errors="replace") as f:
            return f.read()

    def url(self, path="/realtime/api/v1/ws/realtime", scheme="ws"):
        return f"{scheme}://{self.host}:{self.port}{path}"

    def control(self, what, **params):
        """GET /control/<what>?params; returns (status, parsed JSON body)."""
        q = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        u = f"http://{self.host}:{self.port}/control/{what}" + (f"?{q}" if q else "")
        try:
            with urllib.request.urlopen(u, timeout=DEFAULT_TIMEOUT) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def set(self, **params):
        status, body = self.control("set", **params)
        if status != 200:
            raise SimError(f"/control/set {params}: {status} {body}")
        return body

    def stats(self):
        return self.control("stats")[1]

    def stop(self, timeout=DEFAULT_TIMEOUT):
        """SIGTERM, wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise SimError("sim did not exit on SIGTERM")
        self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        rc = self.stop()
        err = self.stderr_text()
        os.unlink(self.stderr_file.name)
        if rc != 0 and exc[0] is None:
            raise SimError(f"sim exited with status {rc}: {err}")


class Client:
    """One upstream connection, as the bridge would make it."""

    def __init__(self, sim, timeout=DEFAULT_TIMEOUT, **kw):
        self.close_code = None
        self.ws = websocket.create_connection(sim.url(), timeout=timeout,
                                              skip_utf8_validation=True, **kw)

    def authenticate(self, token, instance, device_token=None, client_id=None):
        msg = {"type": "authenticate", "access_token": token, "instance_id": instance,
               "units": "metric", "timezone": "UTC", "date_format": "unix"}
        if client_id is not None:
            msg["client_id"] = client_id
        if device_token is not None:
            msg["device_token"] = device_token
        self.ws.send(json.dumps(msg))
        return msg

    def recv_raw(self, timeout=DEFAULT_TIMEOUT):
        """Next data message as (opcode, bytes); raises WebSocketConnectionClosedException on
        close, WebSocketTimeoutException on timeout."""
        self.ws.settimeout(timeout)
        opcode, data = self.ws.recv_data(control_frame=False)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            raise websocket.WebSocketConnectionClosedException(f"closed ({self.close_code})")
        return opcode, data

    def recv_json(self, timeout=DEFAULT_TIMEOUT):
        _, data = self.recv_raw(timeout)
        return json.loads(data)

    def recv_type(self, mtype, timeout=DEFAULT_TIMEOUT, on_other=None):
        """Skips messages until one of type mtype arrives (within the deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SimError(f"no {mtype} within {timeout}s")
            m = self.recv_json(left)
            if m.get("type") == mtype:
                return m
            if on_other:
                on_other(m)

    def expect_closed(self, timeout=DEFAULT_TIMEOUT):
        """Reads until the server closes; returns ('close', code) or ('reset', None)."""
        deadline = time.monotonic() + timeout
        self.ws.settimeout(timeout)
        try:
            while time.monotonic() < deadline:
                frame = self.ws.recv_frame()
                if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                    code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
                    return "close", code
        except websocket.WebSocketConnectionClosedException:
            return "eof", None
        except ConnectionResetError:
            return "reset", None
        raise SimError("connection still open")

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass
