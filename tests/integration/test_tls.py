"""TLS both ways (issue 6): MQTT over a real mosquitto TLS listener with both client backends, and
the upstream over wss with the simulator serving a certificate from a CA made at run time."""

import os
import re
import ssl
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import Bridge, Broker, Sim, Subscriber, bridge_conf, free_port, wait_for  # noqa: E402
import certs  # noqa: E402


class PkiCase(unittest.TestCase):
    """One PKI for the whole class: generating it costs a few hundred ms."""

    @classmethod
    def setUpClass(cls):
        cls.pkidir = tempfile.TemporaryDirectory()
        cls.pki = certs.Pki(cls.pkidir.name)

    @classmethod
    def tearDownClass(cls):
        cls.pkidir.cleanup()

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.bridge = None
        self.procs = []

    def tearDown(self):
        if self.bridge and self.bridge.alive():
            self.bridge.stop()
        for p in reversed(self.procs):
            p.stop()
        if self.bridge and any(e for e in self._errors()):
            sys.stderr.write("---- bridge log ----\n" + self.bridge.output()[-5000:])
        self.tmpdir.cleanup()

    def _errors(self):
        res = getattr(self, "_outcome", None)
        if hasattr(res, "result"):
            return list(res.result.errors) + list(res.result.failures)
        return getattr(res, "errors", None) or []

    def started(self, p):
        self.procs.append(p)
        return p.start()

    def log_matches(self, pattern):
        return re.search(pattern, self.bridge.output(), re.I | re.M)


class MqttTls:
    """A plain listener (for the test's own subscriber) plus a TLS listener on one mosquitto; the
    cases run once per backend (the subclasses below set `client`)."""

    client = None

    def tls_broker(self, cert="server", require_certificate=False):
        self.tls_port = free_port()
        extra = certs.mosquitto_tls_listener(self.pki, self.tls_port, cert, require_certificate)
        broker = self.started(Broker(self.tmp, extra=extra))
        self.sub = Subscriber(broker.port)
        self.addCleanup(self.sub.close)
        return broker

    def run_bridge(self, url, mqtt_extra):
        self.sim = self.started(Sim(self.tmp, "--instance", "inst1", "--token", "tok-1",
                                    "--devices", "2", "--rate", "20"))
        conf = bridge_conf(self.sim.url, url, token="tok-1",
                           mqtt_extra='client = "%s"; %s' % (self.client, mqtt_extra))
        self.bridge = Bridge(self.tmp, conf).start()

    def positions(self):
        return [t for t in self.sub.topics("telematics/inst1/") if t.endswith("/position")]

    def assert_connects(self, url, mqtt_extra):
        self.run_bridge(url, mqtt_extra)
        wait_for(lambda: len(self.positions()) >= 2, 20, "positions over MQTT TLS")
        self.assertEqual(self.sub.get("telematics/bridge/state"), "online")
        self.assertTrue(self.log_matches(r"mqtt.*connected to"))

    def assert_refused(self, url, mqtt_extra, reason):
        """The bridge keeps retrying, says why each time, and nothing reaches the broker."""
        self.run_bridge(url, mqtt_extra)
        wait_for(lambda: len(re.findall(reason, self.bridge.output(), re.I)) >= 2, 20,
                 "the refusal logged at least twice: " + reason)
        wait_for(lambda: self.sim.stats()["updates_sent"] >= 10, 10, "upstream updates flowing")
        self.assertTrue(self.bridge.alive())
        self.assertEqual(self.sub.topics("telematics/"), [])
        self.assertEqual(self.sub.topics("homeassistant/"), [])
        self.assertFalse(self.log_matches(r"mqtt.*connected to"))

    def ca(self):
        return 'ca_file = "%s";' % self.pki.ca

    def test_right_ca_connects_ssl_ip(self):
        self.tls_broker()
        self.assert_connects("ssl://127.0.0.1:%d" % self.tls_port, self.ca())

    def test_right_ca_connects_mqtts_localhost(self):
        self.tls_broker()
        self.assert_connects("mqtts://localhost:%d" % self.tls_port, self.ca())

    def test_unknown_ca_refused(self):
        self.tls_broker(cert="unknownca")
        self.assert_refused("ssl://127.0.0.1:%d" % self.tls_port, self.ca(), self.why["ca"])

    def test_system_store_refuses_private_ca(self):
        self.tls_broker()
        self.assert_refused("mqtts://localhost:%d" % self.tls_port, "", self.why["ca"])

    def test_wrong_hostname_refused(self):
        self.tls_broker(cert="wronghost")
        self.assert_refused("ssl://127.0.0.1:%d" % self.tls_port, self.ca(), self.why["host"])

    def test_wrong_hostname_refused_by_name(self):
        self.tls_broker(cert="wronghost")
        self.assert_refused("mqtts://localhost:%d" % self.tls_port, self.ca(), self.why["host"])

    def test_expired_refused(self):
        self.tls_broker(cert="expired")
        self.assert_refused("ssl://127.0.0.1:%d" % self.tls_port, self.ca(), self.why["expired"])

    def test_client_certificate(self):
        self.tls_broker(require_certificate=True)
        self.assert_connects("ssl://127.0.0.1:%d" % self.tls_port,
                             self.ca() + 'cert_file = "%s"; key_file = "%s";'
                             % (self.pki.cert("client"), self.pki.key("client")))

    def test_client_certificate_missing_refused(self):
        self.tls_broker(require_certificate=True)
        self.assert_refused("ssl://127.0.0.1:%d" % self.tls_port, self.ca(), self.why["nocert"])


class TestMqttTlsMosquitto(MqttTls, PkiCase):
    client = "mosquitto"
    # the bridge reads the verification result off libmosquitto's SSL object
    why = {"ca": r"mqtt: .*TLS: server certificate rejected: (unable to get local issuer|"
                 r"self-signed certificate in certificate chain)",
           "host": r"mqtt: .*TLS: server certificate rejected: its names do not match host "
                   r"(127\.0\.0\.1|localhost)",
           "expired": r"mqtt: .*TLS: server certificate rejected: certificate has expired",
           "nocert": r"mqtt: connecting to .* failed: TLS: error:[0-9A-F]+:SSL routines::"
                     r"tlsv13 alert certificate required"}


class TestMqttTlsLws(MqttTls, PkiCase):
    client = "lws"
    # the bridge's own TLS session (OpenSSL): the verification result, else OpenSSL's error
    why = {"ca": r"mqtt: .*TLS: server certificate rejected: (unable to get local issuer|"
                 r"self-signed certificate in certificate chain)",
           "host": r"mqtt: .*TLS: server certificate rejected: (IP address|hostname) mismatch",
           "expired": r"mqtt: .*TLS: server certificate rejected: certificate has expired",
           "nocert": r"mqtt: .*TLS: error:[0-9A-F]+:SSL routines::"
                     r"tlsv13 alert certificate required"}


class TestMqttTlsPaho(MqttTls, PkiCase):
    client = "paho"
    # Paho hands over only OpenSSL's error queue, and nothing at all for a name mismatch
    why = {"ca": r"mqtt: TLS with .*certificate verify failed",
           "host": r"mqtt: .*the server certificate does not match host (127\.0\.0\.1|localhost)",
           "expired": r"mqtt: TLS with .*certificate verify failed",
           "nocert": r"mqtt: connecting to .* failed: .*the server ended the handshake"}


class TlsSim(Sim):
    """The simulator serving wss://; its control channel is then https (the test's own channel,
    so its certificate is not checked there)."""

    def control(self, path):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen("https://127.0.0.1:%d/control/%s" % (self.port, path),
                                    timeout=5, context=ctx) as r:
            return r.read().decode()


class TestUpstreamWss(PkiCase):
    def start(self, cert="server", upstream_extra="", host="127.0.0.1"):
        self.broker = self.started(Broker(self.tmp))
        self.sub = Subscriber(self.broker.port)
        self.addCleanup(self.sub.close)
        self.sim = self.started(TlsSim(self.tmp, "--instance", "inst1", "--token", "tok-1",
                                       "--devices", "2", "--rate", "20",
                                       "--tls-cert", self.pki.cert(cert),
                                       "--tls-key", self.pki.key(cert)))
        url = "wss://%s:%d/realtime/api/v1/ws/realtime" % (host, self.sim.port)
        conf = bridge_conf(url, self.broker.url, token="tok-1")
        conf = conf.replace("backoff_max = 0.5;", "backoff_max = 0.5; %s" % upstream_extra)
        self.bridge = Bridge(self.tmp, conf).start()

    def positions(self):
        return [t for t in self.sub.topics("telematics/inst1/") if t.endswith("/position")]

    def assert_refused(self, reason):
        """The lws log line (routed into the bridge's log at level error) says why, at every
        attempt; the bridge keeps retrying and nothing is published."""
        wait_for(lambda: len(re.findall(reason, self.bridge.output(), re.I)) >= 2, 20,
                 "the refusal logged twice: " + reason)
        self.assertRegex(self.bridge.output(), r"warn +upstream: instance inst1: connection failed")
        self.assertTrue(self.bridge.alive())
        self.assertEqual(self.sim.stats()["authenticated"], 0)
        self.assertEqual(self.positions(), [])

    def test_ca_file_connects(self):
        self.start(upstream_extra='ca_file = "%s";' % self.pki.ca)
        wait_for(lambda: len(self.positions()) >= 2, 20, "positions over wss")
        self.assertGreaterEqual(self.sim.stats()["authenticated"], 1)
        self.assertFalse(self.log_matches(r"tls_verify = false"))

    def test_ca_file_connects_by_name(self):
        self.start(upstream_extra='ca_file = "%s";' % self.pki.ca, host="localhost")
        wait_for(lambda: len(self.positions()) >= 2, 20, "positions over wss://localhost")

    def test_system_store_refuses_private_ca(self):
        self.start()
        self.assert_refused(r"lws: SSL error: (unable to get local issuer certificate|"
                            r"self-signed certificate in certificate chain)")

    def test_unknown_ca_refused(self):
        self.start(cert="unknownca", upstream_extra='ca_file = "%s";' % self.pki.ca)
        self.assert_refused(r"lws: SSL error: unable to get local issuer certificate")

    def test_wrong_hostname_refused(self):
        self.start(cert="wronghost", upstream_extra='ca_file = "%s";' % self.pki.ca)
        self.assert_refused(r"lws: SSL error: IP address mismatch")

    def test_wrong_hostname_refused_by_name(self):
        self.start(cert="wronghost", upstream_extra='ca_file = "%s";' % self.pki.ca,
                   host="localhost")
        self.assert_refused(r"lws: SSL error: Hostname mismatch")

    def test_expired_refused(self):
        self.start(cert="expired", upstream_extra='ca_file = "%s";' % self.pki.ca)
        self.assert_refused(r"lws: SSL error: certificate has expired")

    def test_tls_verify_false_connects_with_warning_every_connect(self):
        self.start(cert="wronghost", upstream_extra="tls_verify = false;")
        wait_for(lambda: len(self.positions()) >= 1, 20, "positions with tls_verify = false")
        self.sim.control("drop")
        wait_for(lambda: self.sim.stats()["authenticated"] >= 2, 20, "a reconnect")
        warning = r"warn +upstream: instance inst1: upstream.tls_verify = false"
        wait_for(lambda: len(re.findall(warning, self.bridge.output())) >= 2,
                 10, "the warning at the second connect")


if __name__ == "__main__":
    unittest.main()
