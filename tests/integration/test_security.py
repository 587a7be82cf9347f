"""Hostile input end to end and secrets (issue 6, SPEC sections 2, 6 and 8): the real simulator
sends what an attacker upstream could, and a subscriber on `#` watches the broker."""

import json
import os
import re
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import unittest
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(__file__))
from harness import (BIN, Bridge, Broker, Sim, Subscriber, bridge_conf, free_port,  # noqa: E402
                     wait_for)

ALLOWED_PREFIXES = ("telematics/", "homeassistant/", "owntracks/", "t2m-test/")
POS = {"Latitude": 40.7128, "Longitude": -74.006, "Speed": 7.85, "Accuracy": 5.0,
       "Timestamp": 1640995200, "Heading": 180.0}

# Accepted as topic segments (1..256 bytes once UTF-8): each must land on its own, encoded topic.
HOSTILE_OK = ["a/b", "+", "#", "$SYS", "../x", "..", "nul\u0000byte", "with space",
              "\u00fcn\u00efc\u00f8d\u00e9-\u65e5\u672c", "%2F", "a%2Fb", "a%252Fb", "x" * 256,
              "tab\tnew\nline", "quote\"back\\slash", "\u00e9" * 128, "A", "a"]
# Rejected (counted as invalid_token, never published).
HOSTILE_BAD = ["", "x" * 257, "y" * 10000, "\u00e9" * 129]


def update(token, pos=None, ts=1640995200, track="T1"):
    p = dict(POS if pos is None else pos)
    if ts is not None and pos is None:
        p["Timestamp"] = ts
    return {"type": "device_update", "device_token": token, "track_token": track, "position": p}


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return r.read().decode()


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\d+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return int(m.group(1)) if m else None


def dropped(port, reason):
    return metric(metrics(port), "t2m_updates_dropped_total", '{reason="%s"}' % reason)


class Base(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.broker = Broker(self.tmp).start()
        self.sub = Subscriber(self.broker.port)
        self.bridge = None
        self.sim = None

    def tearDown(self):
        if self.bridge and self.bridge.alive():
            self.bridge.stop()
        self.sub.close()
        if self.sim:
            self.sim.stop()
        self.broker.stop()
        res = getattr(self, "_outcome", None)
        errs = list(res.result.errors) + list(res.result.failures) if hasattr(res, "result") else []
        if self.bridge and any(e for e in errs):
            sys.stderr.write("---- bridge log ----\n" + self.bridge.output()[-6000:])
        self.tmpdir.cleanup()

    def start(self, sim_args=(), **kw):
        self.sim = Sim(self.tmp, *sim_args).start()
        self.http_port = free_port()
        kw.setdefault("http", "127.0.0.1:%d" % self.http_port)
        kw.setdefault("discovery", "entity")  # counts per-entity trackers
        self.bridge = Bridge(self.tmp, bridge_conf(self.sim.url, self.broker.url, **kw)).start()
        wait_for(lambda: self.sim.stats()["authenticated_active"] >= 1, 10, "authentication")
        wait_for(lambda: "subscribed" in (self.sub.get("telematics/inst1/status") or ""), 10,
                 "status subscribed")

    def assert_namespace(self):
        """Nothing anywhere on the broker outside the bridge's topics."""
        with self.sub.lock:
            topics = [t for t, _, _ in self.sub.messages]
        outside = [t for t in topics if not t.startswith(ALLOWED_PREFIXES)]
        self.assertEqual(outside, [])
        for t in topics:
            self.assertNotIn("\x00", t)
            if t.startswith(("telematics/", "owntracks/")):
                self.assertFalse(set(t) & set("+#"), t)

    def finish(self):
        """The bridge survived all of it, stops cleanly, and no sanitizer said a word."""
        self.assertTrue(self.bridge.alive(), "the bridge died")
        self.assertEqual(self.bridge.stop(), 0)
        self.assertNotRegex(self.bridge.output(), r"AddressSanitizer|runtime error:|LeakSanitizer")

    def send_raw(self, data):
        """Sends bytes verbatim (the harness' send takes text)."""
        return self.sim.control("send?json=" + urllib.parse.quote(data))


class TestHostileTokens(Base):
    def test_tokens_encoded_reversible_collision_free(self):
        self.start(sim_args=("--instance", "inst1", "--token", "secret-token", "--devices", "1",
                             "--rate", "0"),
                   extra="owntracks = { enabled = true; };")
        for i, tok in enumerate(HOSTILE_OK + HOSTILE_BAD):
            self.sim.send(update(tok, ts=1640995200 + i))
        marker = "marker-device"
        self.sim.send(update(marker, ts=1640999999))
        wait_for(lambda: self.sub.get("telematics/inst1/%s/position" % marker), 10,
                 "the last update's position")

        by_topic = {}
        for t in self.sub.topics("telematics/inst1/"):
            if not t.endswith("/position"):
                continue
            seg = t[len("telematics/inst1/"):-len("/position")]
            self.assertNotIn("/", seg)
            self.assertRegex(seg, r"^[A-Za-z0-9._~%-]+$")
            decoded = urllib.parse.unquote_to_bytes(seg)
            payload = self.sub.json(t)
            # reversible: the segment decodes to exactly the token the payload names
            self.assertEqual(decoded, payload["device_token"].encode("utf-8"), t)
            by_topic[t] = payload["device_token"]
        published = sorted(by_topic.values())
        self.assertEqual(published, sorted(HOSTILE_OK + [marker]))
        # collision-free: as many topics as distinct tokens
        self.assertEqual(len(by_topic), len(set(HOSTILE_OK)) + 1)
        for tok in HOSTILE_OK:
            enc = urllib.parse.quote(tok.encode("utf-8"), safe="-._~")
            self.assertIn("owntracks/inst1/" + enc, self.sub.topics("owntracks/"))
        self.assertEqual(dropped(self.http_port, "invalid_token"), len(HOSTILE_BAD))
        self.assert_namespace()
        # HA ids are collision-free too: one device_tracker config per token
        trackers = [t for t in self.sub.topics("homeassistant/device_tracker/")
                    if t.endswith("/config")]
        self.assertEqual(len(trackers), len(HOSTILE_OK) + 1)
        self.finish()

    def test_sim_bad_tokens_stream(self):
        self.start(sim_args=("--instance", "inst1", "--devices", "3", "--rate", "200",
                             "--bad-tokens"))
        wait_for(lambda: self.sim.stats()["updates_sent"] >= 300, 20, "300 updates streamed")
        wait_for(lambda: (dropped(self.http_port, "invalid_token") or 0) >= 2, 10,
                 "the sim's empty and 300-byte tokens dropped")
        self.assert_namespace()
        for t in self.sub.topics("telematics/inst1/"):
            if t.endswith("/position"):
                seg = t.split("/")[2]
                self.assertEqual(urllib.parse.unquote_to_bytes(seg),
                                 self.sub.json(t)["device_token"].encode("utf-8"))
        for raw in ("a/b", "+", "#", "$SYS", "../x"):
            enc = urllib.parse.quote(raw, safe="-._~")
            wait_for(lambda: self.sub.get("telematics/inst1/%s/position" % enc), 10,
                     "position of the hostile token " + raw)
        self.finish()

    def test_odd_instance_ids_in_config(self):
        odd = ["odd/+#$ \u00fc", "../..", "$SYS"]
        inst = ", ".join('{ id = "%s"; access_token = "t"; }' % i.replace('"', '\\"')
                         for i in ["inst1"] + odd)
        self.start(sim_args=("--devices", "1", "--rate", "0"), instances="( %s )" % inst)
        wait_for(lambda: self.sim.stats()["authenticated_active"] >= 4, 10, "4 instances")
        self.sim.send(update("dev1"))
        for i in odd:
            enc = urllib.parse.quote(i.encode("utf-8"), safe="-._~")
            p = wait_for(lambda: self.sub.json("telematics/%s/dev1/position" % enc), 10,
                         "position under instance " + i)
            self.assertEqual(p["instance_id"], i)
            wait_for(lambda: "subscribed" in (self.sub.get("telematics/%s/status" % enc) or ""),
                     10, "status of instance " + i)
        self.assert_namespace()
        self.finish()


class TestConfigIds(unittest.TestCase):
    def test_empty_or_long_instance_id_is_a_config_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            for bad, why in (("", "must not be empty"), ("x" * 257, "longer than 256 bytes")):
                path = os.path.join(tmp, "c.conf")
                with open(path, "w") as f:
                    f.write('instances = ( { id = "%s"; access_token = "t"; } );\n' % bad)
                r = subprocess.run([BIN, "-c", path, "--check-config"], capture_output=True,
                                   text=True, timeout=30)
                self.assertEqual(r.returncode, 2)
                self.assertRegex(r.stderr, r"c\.conf:1: instances\[0\]\.id: " + why)


class TestLimits(Base):
    def start(self, sim_args=("--instance", "inst1", "--devices", "1", "--rate", "0"), **kw):
        """max_message_size and max_devices live in the upstream group bridge_conf writes."""
        self.sim = Sim(self.tmp, *sim_args).start()
        self.http_port = free_port()
        conf = bridge_conf(self.sim.url, self.broker.url, http="127.0.0.1:%d" % self.http_port,
                           token=kw.get("token", "secret-token"))
        conf = conf.replace("backoff_max = 0.5;",
                            "backoff_max = 0.5; max_message_size = 4096; max_devices = 3;")
        self.bridge = Bridge(self.tmp, conf).start()
        wait_for(lambda: self.sim.stats()["authenticated_active"] >= 1, 10, "authentication")

    def reconnect(self):
        n = self.sim.stats()["authenticated"]
        self.sim.control("drop")
        wait_for(lambda: self.sim.stats()["authenticated"] > n, 10, "a reconnect")

    def test_max_message_size_over_and_under(self):
        self.start(sim_args=("--instance", "inst1", "--devices", "1", "--rate", "0"))
        tok = self.sim.stats()["device_tokens"][0]
        topic = "telematics/inst1/%s/position" % tok
        self.sim.control("set?huge_frame=5000")
        self.reconnect()
        wait_for(lambda: dropped(self.http_port, "too_large") == 1, 10, "too_large counted")
        self.assertIsNone(self.sub.get(topic))
        self.assertTrue(self.bridge.alive())
        self.sim.control("set?huge_frame=4000")
        self.reconnect()
        wait_for(lambda: self.sub.get(topic), 10, "the 4000-byte update published")
        self.assertEqual(dropped(self.http_port, "too_large"), 1)
        self.assertRegex(self.bridge.output(), r"warn .*over upstream.max_message_size")
        # a connection that sent a too-large message still works afterwards
        self.sim.send(update("after-huge"))
        wait_for(lambda: self.sub.get("telematics/inst1/after-huge/position"), 10, "next update")
        self.finish()

    def test_depth_utf8_junk_counted_rest_publishes(self):
        self.start()
        deep = ('{"type":"device_update","device_token":"deep","position":%s}'
                % ("[" * 200 + "]" * 200))
        self.sim.send(deep)
        self.send_raw(b'{"type":"device_update","device_token":"bad\xff\xfeutf8","position":{}}')
        self.send_raw(b'{"type":"device_update","device_token":"over\xc0\xaflong"}')
        self.send_raw(b'{"type":"device_update","device_token":"surr\xed\xa0\x80"}')
        self.sim.send('{"type":"device_update","device_token":"trail"} {"x":1}')
        self.sim.send('{"type":"device_update","device_token":"trunc"')
        self.sim.send('[1,2,3]')
        wait_for(lambda: dropped(self.http_port, "invalid_json") == 7, 10,
                 "7 invalid messages counted")
        self.sim.send(update("fine"))
        wait_for(lambda: self.sub.get("telematics/inst1/fine/position"), 10, "a good update")
        self.assertEqual([t for t in self.sub.topics("telematics/inst1/")
                          if t.endswith("/position")], ["telematics/inst1/fine/position"])
        self.assert_namespace()
        self.finish()

    def test_fields_rejected_one_by_one(self):
        self.start()
        self.sim.send('{"type":"device_update","device_token":"d1","track_token":"T",'
                      '"position":{"Latitude":1e400,"Longitude":"12.5","Speed":-1,'
                      '"Accuracy":5.0,"Heading":"NaN","Timestamp":1640995200}}')
        p = wait_for(lambda: self.sub.json("telematics/inst1/d1/position"), 10, "d1 position")
        self.assertEqual(p["accuracy"], 5)
        self.assertEqual(p["timestamp"], "2022-01-01T00:00:00Z")
        for k in ("latitude", "longitude", "speed", "heading"):
            self.assertNotIn(k, p)
        wait_for(lambda: metric(metrics(self.http_port), "t2m_fields_rejected_total") == 4, 5,
                 "4 fields rejected")
        # NaN and Infinity as bare literals (json-c accepts them even in strict mode)
        self.sim.send('{"type":"device_update","device_token":"d2","position":{"Latitude":NaN,'
                      '"Longitude":-Infinity,"Speed":1e308,"Heading":400,"Timestamp":"soon",'
                      '"Accuracy":2}}')
        p2 = wait_for(lambda: self.sub.json("telematics/inst1/d2/position"), 10, "d2 position")
        self.assertEqual(set(k for k in p2 if k in ("latitude", "longitude", "speed", "heading")),
                         set())
        self.assertIn("accuracy", p2)
        # SPEC 2.1: a fix without a (valid) Timestamp is as of its arrival
        self.assertEqual(p2["timestamp"], p2["last_seen"])
        # Latitude, Longitude, Speed (faster than light), Heading, Timestamp
        self.assertEqual(metric(metrics(self.http_port), "t2m_fields_rejected_total"), 4 + 5)
        for v in p2.values():
            self.assertIsNotNone(v)
        self.finish()

    def test_max_devices_and_every_drop_reason(self):
        self.start()
        for i in range(5):
            self.sim.send(update("dev%d" % i))
        self.sim.send(update("dev0", ts=1600000000))  # stale
        self.sim.send(update("dev1", ts=1640999999))
        wait_for(lambda: (self.sub.json("telematics/inst1/dev1/position") or {}).get(
            "timestamp") == "2022-01-01T01:19:59Z", 10, "dev1 updated")
        got = sorted(t for t in self.sub.topics("telematics/inst1/") if t.endswith("/position"))
        self.assertEqual(got, ["telematics/inst1/dev%d/position" % i for i in range(3)])
        text = metrics(self.http_port)
        self.assertEqual(metric(text, "t2m_updates_dropped_total", '{reason="max_devices"}'), 2)
        self.assertEqual(metric(text, "t2m_updates_dropped_total", '{reason="stale"}'), 1)
        self.assertEqual(metric(text, "t2m_devices"), 3)
        self.assertRegex(self.bridge.output(), r"warn .*max_devices \(3\) reached")
        # the devices already known keep publishing
        self.sim.send(update("dev2", ts=1641000000))
        wait_for(lambda: (self.sub.json("telematics/inst1/dev2/position") or {}).get(
            "timestamp") == "2022-01-01T01:20:00Z", 10, "dev2 still published")
        for reason in ("invalid_json", "too_large", "invalid_token", "stale", "max_devices",
                       "offline_queue"):
            self.assertIsNotNone(metric(text, "t2m_updates_dropped_total",
                                        '{reason="%s"}' % reason), reason)
        self.finish()


class RefreshServer:
    """A loopback stand-in for the RefreshToken endpoint: hands out `access` and a rotated
    refresh token, records the requests."""

    def __init__(self, access, rotated):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append(json.loads(body))
                out = json.dumps({"Result": {"AccessToken": {"Token": access, "ExpiresIn": 3600},
                                             "RefreshToken": rotated}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = socketserver.TCPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class TestSecrets(unittest.TestCase):
    client = "mosquitto"
    ACCESS = "AT-sekr3t-1111-access"
    ACCESS2 = "AT-sekr3t-2222-refreshed"
    REFRESH = "RT-sekr3t-3333-refresh"
    REFRESH2 = "RT-sekr3t-4444-rotated"
    PASSWORD = "PW-sekr3t-5555-mqtt"
    MARK = "sekr3t"  # in every secret above and nowhere else

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.bridge = self.sim = self.broker = self.refresh = None

    def tearDown(self):
        if self.bridge and self.bridge.alive():
            self.bridge.stop()
        res = getattr(self, "_outcome", None)
        errs = list(res.result.errors) + list(res.result.failures) if hasattr(res, "result") else []
        if self.bridge and any(e for e in errs):
            lines = [ln for ln in self.bridge.output().splitlines() if " paho: " not in ln]
            sys.stderr.write("---- bridge log ----\n" + "\n".join(lines)[-6000:] + "\n")
        for p in (self.sim, self.broker):
            if p:
                p.stop()
        if self.refresh:
            self.refresh.close()
        self.tmpdir.cleanup()

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    @staticmethod
    def read(path):
        with open(path) as f:
            return f.read()

    def get(self, path):
        if not self.bridge.alive():
            raise AssertionError("the bridge exited: " + self.bridge.output()[-3000:])
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http_port, path),
                                        timeout=5) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            return e.read().decode()
        except urllib.error.URLError:
            return ""

    def test_no_secret_in_any_output(self):
        passwd = os.path.join(self.tmp, "mosquitto.passwd")
        r = subprocess.run(["mosquitto_passwd", "-b", "-c", passwd, "t2m", self.PASSWORD],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, "mosquitto_passwd (Debian package 'mosquitto'): " +
                         r.stderr)
        self.broker = Broker(self.tmp, extra="password_file %s\n" % passwd)
        with open(self.broker.conf) as f:
            conf = f.read().replace("allow_anonymous true", "allow_anonymous false")
        with open(self.broker.conf, "w") as f:
            f.write(conf)
        self.broker.start()
        accepted = self.write("accepted-tokens", "%s\n%s\n" % (self.ACCESS, self.ACCESS2))
        self.sim = Sim(self.tmp, "--instance", "inst1", "--token-file", accepted, "--devices",
                       "2", "--rate", "20").start()
        self.refresh = RefreshServer(self.ACCESS2, self.REFRESH2)
        token_file = self.write("access", self.ACCESS + "\n", 0o644)
        refresh_file = self.write("refresh", self.REFRESH + "\n")
        pw_file = self.write("mqttpw", self.PASSWORD + "\n", 0o644)
        self.http_port = free_port()
        conf = bridge_conf(self.sim.url, self.broker.url, http="127.0.0.1:%d" % self.http_port,
                           instances='( { id = "inst1"; access_token_file = "%s"; '
                                     'refresh_token_file = "%s"; } )' % (token_file, refresh_file),
                           mqtt_extra='client = "%s"; username = "t2m"; password_file = "%s";'
                                      % (self.client, pw_file))
        env = {"T2M_REFRESH_URL": "http://127.0.0.1:%d/v1/Auth/RefreshToken" % self.refresh.port}
        self.bridge = Bridge(self.tmp, conf, env=env, args=["-v"]).start()
        outputs = {}

        wait_for(lambda: self.bridge.alive() and '"status":"ok"' in self.get("/healthz"), 15,
                 "healthy: MQTT + upstream")
        # a 401: the bridge refreshes, the rotated refresh token is persisted 0600
        self.sim.control("set?auth_error=401")
        self.sim.control("drop")
        wait_for(lambda: self.refresh.requests, 15, "a refresh request")
        self.sim.control("set?auth_error=0")
        wait_for(lambda: (self.sim.stats().get("last_auth") or {}).get("access_token") ==
                 self.ACCESS2 and self.sim.stats()["authenticated_active"] >= 1, 15,
                 "re-authenticated with the refreshed token")
        self.assertEqual(self.refresh.requests[0]["RefreshToken"], self.REFRESH)
        wait_for(lambda: self.read(refresh_file).strip() == self.REFRESH2, 10,
                 "the rotated refresh token persisted")
        self.assertEqual(os.stat(refresh_file).st_mode & 0o777, 0o600)
        # an MQTT reconnect (with the password again)
        self.broker.stop()
        wait_for(lambda: '"status":"error"' in self.get("/healthz"), 10, "unhealthy")
        outputs["healthz-down"] = self.get("/healthz")
        self.broker.start()
        wait_for(lambda: '"status":"ok"' in self.get("/healthz"), 15, "healthy again")
        # SIGHUP re-reads the files: a wrong password is refused, the right one works again
        self.write("mqttpw", "wrong-" + self.PASSWORD + "\n", 0o644)
        self.bridge.signal(signal.SIGHUP)
        wait_for(lambda: re.search(r"mqtt: connecting .* failed: .*not authori[sz]ed",
                                   self.bridge.output(), re.I), 15, "the wrong password refused")
        self.write("mqttpw", self.PASSWORD + "\n", 0o644)
        self.bridge.signal(signal.SIGHUP)
        wait_for(lambda: self.bridge.output().count("SIGHUP") >= 2, 5, "second SIGHUP handled")
        wait_for(lambda: '"status":"ok"' in self.get("/healthz"), 20, "healthy after SIGHUP")
        outputs["metrics"] = self.get("/metrics")
        outputs["healthz"] = self.get("/healthz")
        outputs["notfound"] = self.get("/%s" % self.ACCESS)
        self.assertIn("t2m_mqtt_connected 1", outputs["metrics"])
        cc = subprocess.run([BIN, "-c", self.bridge.conf_path, "-v", "--check-config"],
                            capture_output=True, text=True, env=self.bridge.env, timeout=30)
        self.assertEqual(cc.returncode, 0, cc.stderr)
        outputs["check-config stdout"] = cc.stdout
        outputs["check-config stderr"] = cc.stderr
        self.assertIn("inst1", cc.stdout)
        self.assertEqual(self.bridge.stop(), 0)
        log = self.bridge.output()
        self.assertNotRegex(log, r"AddressSanitizer|runtime error:|LeakSanitizer")
        outputs["bridge log"] = log
        self.assertRegex(log, r"warn .*%s is readable by group or others" % re.escape(token_file))
        self.assertRegex(log, r"warn .*%s is readable by group or others" % re.escape(pw_file))
        self.assertRegex(log, r"debug ")  # -v really was debug
        for name, text in outputs.items():
            self.assertNotIn(self.MARK, text, "a secret in the %s" % name)
        # the same with the secrets inline in the file and in the environment
        conf2 = bridge_conf(self.sim.url, self.broker.url,
                            token=self.ACCESS, mqtt_extra='username = "t2m"; password = "%s";'
                            % self.PASSWORD)
        path2 = self.write("inline.conf", conf2)
        env2 = dict(self.bridge_env(), T2M_MQTT_PASSWORD=self.PASSWORD,
                    T2M_ACCESS_TOKEN=self.ACCESS2)
        cc2 = subprocess.run([BIN, "-c", path2, "-v", "--check-config"], capture_output=True,
                             text=True, env=env2, timeout=30)
        self.assertEqual(cc2.returncode, 0, cc2.stderr)
        self.assertNotIn(self.MARK, cc2.stdout + cc2.stderr)

    def bridge_env(self):
        return {k: v for k, v in os.environ.items() if not k.startswith("T2M_")}


class TestSecretsPaho(TestSecrets):
    client = "paho"


class TestSecretsLws(TestSecrets):
    client = "lws"


if __name__ == "__main__":
    unittest.main()
