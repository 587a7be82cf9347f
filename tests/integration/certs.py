"""Test PKI generated at run time with the openssl command line: a CA, server certificates for
127.0.0.1/localhost, a wrong-hostname one, an expired one, one from an unknown CA, and a client
certificate. Everything lives in a temporary directory owned by the test."""

import os
import shutil
import subprocess

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

# `openssl ca` is the only way in OpenSSL 3.0 to give a certificate dates in the past (x509 and
# req refuse a negative -days), so the signing goes through a minimal CA configuration.
CA_CONF = """
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {dir}
database = {dir}/index-{name}.txt
new_certs_dir = {dir}
serial = {dir}/serial-{name}
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[ any ]
commonName = supplied
[ ext ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = {eku}
{san}
"""


def _run(*args):
    if not os.path.exists(OPENSSL):
        raise AssertionError("openssl not found (Debian package 'openssl'): scripts/deps.sh")
    r = subprocess.run([OPENSSL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, text=True)
    if r.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (args[0], r.stdout))


class Pki:
    """Files under `dir`: ca.pem (the test CA), other-ca.pem (a CA nobody trusts), and per
    certificate NAME: NAME.pem, NAME.key. Names: server (127.0.0.1 + localhost), wronghost
    (wrong.example only), expired (right names, expired in 2020), unknownca (right names, signed
    by other-ca), client (clientAuth, CN t2m-client)."""

    def __init__(self, dir):
        self.dir = os.path.join(dir, "pki")
        os.makedirs(self.dir, exist_ok=True)
        self._ca("ca", "t2m test CA")
        self._ca("other-ca", "t2m unknown CA")
        good = "subjectAltName = IP:127.0.0.1, DNS:localhost"
        self._leaf("server", "ca", "localhost", good)
        self._leaf("wronghost", "ca", "wrong.example", "subjectAltName = DNS:wrong.example")
        self._leaf("expired", "ca", "localhost", good,
                   dates=("20200101000000Z", "20200201000000Z"))
        self._leaf("unknownca", "other-ca", "localhost", good)
        self._leaf("client", "ca", "t2m-client", "", eku="clientAuth")
        self.ca = self.path("ca.pem")
        self.other_ca = self.path("other-ca.pem")

    def path(self, name):
        return os.path.join(self.dir, name)

    def cert(self, name):
        return self.path(name + ".pem")

    def key(self, name):
        return self.path(name + ".key")

    def _key(self, name):
        _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-out", self.key(name))
        os.chmod(self.key(name), 0o600)

    def _ca(self, name, cn):
        self._key(name)
        _run("req", "-x509", "-new", "-key", self.key(name), "-out", self.cert(name),
             "-days", "30", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        open(self.path("index-%s.txt" % name), "w").close()
        with open(self.path("serial-%s" % name), "w") as f:
            f.write("1000\n")

    def _leaf(self, name, ca, cn, san, eku="serverAuth", dates=None):
        self._key(name)
        csr = self.path(name + ".csr")
        _run("req", "-new", "-key", self.key(name), "-out", csr, "-subj", "/CN=" + cn)
        conf = self.path("ca-%s.cnf" % name)
        with open(conf, "w") as f:
            f.write(CA_CONF.format(dir=self.dir, name=ca, eku=eku, san=san))
        args = ["ca", "-batch", "-config", conf, "-cert", self.cert(ca), "-keyfile",
                self.key(ca), "-in", csr, "-out", self.cert(name), "-extensions", "ext",
                "-notext"]
        if dates:
            args += ["-startdate", dates[0], "-enddate", dates[1]]
        else:
            args += ["-days", "30"]
        _run(*args)


def mosquitto_tls_listener(pki, port, cert="server", require_certificate=False):
    """mosquitto.conf lines for a TLS listener on 127.0.0.1:port serving `cert`."""
    lines = ["listener %d 127.0.0.1" % port, "cafile " + pki.ca, "certfile " + pki.cert(cert),
             "keyfile " + pki.key(cert)]
    if require_certificate:
        lines += ["require_certificate true", "use_identity_as_username true"]
    return "\n".join(lines) + "\n"
