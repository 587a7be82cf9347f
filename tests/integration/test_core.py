"""Core bridge end to end (issue 2): real mosquitto, real simulator, the real daemon."""

import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import outcome_failed  # noqa: E402
from harness import (BIN, Bridge, Broker, Sim, Subscriber, bridge_conf, free_port,  # noqa: E402
                     retained_snapshot, wait_for)

SAMPLE = {"type": "device_update", "device_token": "e4855fba-0d7e-4dbd-baad-aae9d0b90c15",
          "track_token": "9F6A4F03-300B-4C14-8847-DAC537E8D70C",
          "position": {"Latitude": 40.7128, "Longitude": -74.0060, "Speed": 7.85,
                       "Accuracy": 5.0, "Timestamp": 1640995200, "Heading": 180.0}}
SAMPLE_TOPIC = "telematics/inst1/e4855fba-0d7e-4dbd-baad-aae9d0b90c15/position"


class Base(unittest.TestCase):
    sim_args = ("--devices", "3", "--rate", "30")

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.broker = Broker(self.tmp).start()
        self.sim = Sim(self.tmp, "--instance", "inst1", "--token", "secret-token",
                       *self.sim_args).start()
        self.sub = Subscriber(self.broker.port)
        self.bridge = None

    def tearDown(self):
        if self.bridge and self.bridge.alive():
            self.bridge.stop()
        self.sub.close()
        self.sim.stop()
        self.broker.stop()
        if self.bridge and self._outcome_failed():
            sys.stderr.write("---- bridge log ----\n" + self.bridge.output()[-6000:])
        self.tmpdir.cleanup()

    def _outcome_failed(self):
        return outcome_failed(self)

    def start_bridge(self, **kw):
        conf = bridge_conf(self.sim.url, self.broker.url, **kw)
        self.bridge = Bridge(self.tmp, conf).start()
        return self.bridge

    def positions(self):
        return [t for t in self.sub.topics("telematics/inst1/") if t.endswith("/position")]


class TestEndToEnd(Base):
    def test_metric_positions_status_and_auth(self):
        self.start_bridge()
        wait_for(lambda: len(self.positions()) >= 3, 15, "positions of 3 devices")
        self.assertEqual(self.sub.get("telematics/bridge/state"), "online")
        for t in self.positions():
            p = self.sub.json(t)
            self.assertEqual(p["instance_id"], "inst1")
            self.assertEqual(t, "telematics/inst1/%s/position" % p["device_token"])
            self.assertEqual(p["speed_unit"], "km/h")
            self.assertEqual(p["accuracy_unit"], "m")
            self.assertEqual(p["gps_accuracy"], p["accuracy"])
            self.assertTrue(-90 <= p["latitude"] <= 90 and -180 <= p["longitude"] <= 180)
            self.assertTrue(0 <= p["speed"] <= 35 * 3.6 + 0.01)
            self.assertRegex(p["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            for v in p.values():
                self.assertIsNotNone(v)
        status = wait_for(lambda: (self.sub.json("telematics/inst1/status") or {}).get("state")
                          == "subscribed" and self.sub.json("telematics/inst1/status"), 5,
                          "status subscribed")
        self.assertTrue(status.get("connection_id"))
        self.assertIn("since", status)
        auth = self.sim.stats()["last_auth"]
        self.assertEqual(auth["type"], "authenticate")
        self.assertEqual(auth["access_token"], "secret-token")
        self.assertEqual(auth["instance_id"], "inst1")
        self.assertEqual(auth["units"], "metric")
        self.assertEqual(auth["date_format"], "unix")
        self.assertEqual(auth["timezone"], "UTC")
        self.assertNotIn("client_id", auth)
        self.assertNotIn("device_token", auth)
        # retained: a client arriving later sees the positions and the bridge state
        snap = retained_snapshot(self.broker.port)
        self.assertEqual(snap.get("telematics/bridge/state"), "online")
        self.assertTrue(any(t.endswith("/position") for t in snap))
        self.assertNotIn("secret-token", self.bridge.output())

    def test_spec_sample_exact_payload_metric(self):
        self.start_bridge()
        wait_for(lambda: self.sim.stats()["authenticated"] >= 1, 10, "bridge to authenticate")
        wait_for(lambda: self.sub.get("telematics/inst1/status") and
                 "subscribed" in self.sub.get("telematics/inst1/status"), 10, "subscribed")
        self.sim.send(SAMPLE)
        got = wait_for(lambda: self.sub.get(SAMPLE_TOPIC), 10, "the sample's position")
        # SPEC 2.1: the state adds last_seen (its arrival, so not literal) and driving.
        head, last_seen = got.split(',"last_seen":"')
        self.assertEqual(head, '{"instance_id":"inst1","device_token":'
                         '"e4855fba-0d7e-4dbd-baad-aae9d0b90c15","track_token":'
                         '"9F6A4F03-300B-4C14-8847-DAC537E8D70C","latitude":40.7128,'
                         '"longitude":-74.006,"speed":28.26,"speed_unit":"km/h","accuracy":5,'
                         '"accuracy_unit":"m","gps_accuracy":5,"heading":180,'
                         '"timestamp":"2022-01-01T00:00:00Z"')
        # SPEC v3 2.1: and the live trip, exactly the SPEC's sample
        self.assertRegex(last_seen, r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z","driving":true,'
                         r'"trip":\{.*\}\}$')
        self.assertEqual(
            last_seen.split('"trip":', 1)[1][:-1],
            '{"track_token":"9F6A4F03-300B-4C14-8847-DAC537E8D70C","state":"driving",'
            '"start":"2022-01-01T00:00:00Z","duration":0,"distance":0,"distance_unit":"km",'
            '"max_speed":28.26,"avg_speed":0,"speed_unit":"km/h","start_latitude":40.7128,'
            '"start_longitude":-74.006,"end_latitude":40.7128,"end_longitude":-74.006,"updates":1}')

    def test_client_id_and_device_token_sent_when_configured(self):
        self.start_bridge(instances='( { id = "inst1"; access_token = "secret-token"; '
                                    'client_id = "cli-7"; device_token = "dev-9"; } )')
        auth = wait_for(lambda: self.sim.stats().get("last_auth"), 10, "authenticate")
        self.assertEqual(auth["client_id"], "cli-7")
        self.assertEqual(auth["device_token"], "dev-9")


class TestImperial(Base):
    def test_imperial_and_timezone(self):
        self.start_bridge(units='system = "imperial"; timezone = "America/New_York";')
        wait_for(lambda: self.sim.stats()["authenticated"] >= 1, 10, "bridge to authenticate")
        wait_for(lambda: "subscribed" in (self.sub.get("telematics/inst1/status") or ""), 10,
                 "subscribed")
        self.sim.send(SAMPLE)
        p = wait_for(lambda: self.sub.json(SAMPLE_TOPIC), 10, "the sample's position")
        self.assertEqual(p["speed"], 17.56)
        self.assertEqual(p["speed_unit"], "mph")
        self.assertEqual(p["accuracy"], 16.4)
        self.assertEqual(p["accuracy_unit"], "ft")
        self.assertEqual(p["gps_accuracy"], 5)
        self.assertEqual(p["timestamp"], "2021-12-31T19:00:00-05:00")
        self.assertEqual(self.sim.stats()["last_auth"]["timezone"], "America/New_York")
        self.assertEqual(self.sim.stats()["last_auth"]["units"], "metric")

    def test_unix_ms_and_knots(self):
        self.start_bridge(units='speed = "kn"; distance = "ft"; timestamp = "unix_ms";')
        wait_for(lambda: "subscribed" in (self.sub.get("telematics/inst1/status") or ""), 10,
                 "subscribed")
        self.sim.send(SAMPLE)
        p = wait_for(lambda: self.sub.json(SAMPLE_TOPIC), 10, "the sample's position")
        self.assertEqual(p["speed"], 15.26)
        self.assertEqual(p["speed_unit"], "kn")
        self.assertEqual(p["timestamp"], 1640995200000)


class TestPing(Base):
    sim_args = ("--devices", "1", "--rate", "2", "--ping-interval", "0.2")

    def test_pong_with_unix_ms(self):
        self.start_bridge()
        st = wait_for(lambda: (lambda s: s if s["pongs"] >= 3 else None)(self.sim.stats()), 10,
                      "3 pongs")
        now_ms = time.time() * 1000
        self.assertLess(abs(st["last_pong_timestamp"] - now_ms), 60000)


class TestManyDevices(Base):
    sim_args = ("--devices", "200", "--rate", "1000")

    def test_200_devices(self):
        self.start_bridge()
        wait_for(lambda: len(self.positions()) >= 200, 30, "200 devices' positions")
        self.assertEqual(len(set(self.positions())), 200)


class TestManyInstances(Base):
    """B/bridge/info of 300 instances (issue 21: a fixed buffer dropped it silently beyond ~140):
    published whole, every instance in it."""
    sim_args = ("--devices", "1", "--rate", "1")

    def test_info_of_300_instances(self):
        ids = ["inst1"] + ["instance-%03d-%s" % (i, "x" * 40) for i in range(299)]
        inst = "( %s )" % ", ".join('{ id = "%s"; access_token = "secret-token"; }' % i
                                   for i in ids)
        self.start_bridge(instances=inst)
        info = wait_for(lambda: (lambda j: j if j and len(j["instances"]) == 300 else None)(
            self.sub.json("telematics/bridge/info")), 30, "bridge/info with 300 instances")
        self.assertEqual([i["id"] for i in info["instances"]], ids)
        self.assertGreater(len(self.sub.get("telematics/bridge/info")), 16384)


class TestFragmented(Base):
    sim_args = ("--devices", "2", "--rate", "20", "--fragment", "7")

    def test_fragmented_messages_reassembled(self):
        self.start_bridge()
        wait_for(lambda: len(self.positions()) >= 2, 15, "positions from fragmented frames")
        for t in self.positions():
            self.assertIn("latitude", self.sub.json(t))


class TestJunk(Base):
    sim_args = ("--devices", "2", "--rate", "50", "--junk-every", "2")

    def test_junk_survived_and_counted(self):
        port = free_port()
        self.start_bridge(http="127.0.0.1:%d" % port)
        wait_for(lambda: len(self.positions()) >= 2, 15, "positions despite junk")

        def dropped():
            try:
                body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                              timeout=2).read().decode()
            except OSError:
                return None
            for line in body.splitlines():
                if line.startswith('t2m_updates_dropped_total{reason="invalid_json"}'):
                    return float(line.split()[-1]) >= 3
            return None

        wait_for(dropped, 15, "invalid_json drops counted")
        self.assertTrue(self.bridge.alive())


class TestInjected(Base):
    sim_args = ("--devices", "1", "--rate", "1")

    def ready(self, **kw):
        self.start_bridge(**kw)
        wait_for(lambda: "subscribed" in (self.sub.get("telematics/inst1/status") or ""), 10,
                 "subscribed")

    def test_topic_segments_encoded(self):
        self.ready()
        for token in ("a/b", "+", "#", "$SYS", "x y"):
            self.sim.send({"type": "device_update", "device_token": token,
                           "position": {"Latitude": 1.5, "Longitude": 2.5, "Timestamp": 1700000000}})
        for enc in ("a%2Fb", "%2B", "%23", "%24SYS", "x%20y"):
            wait_for(lambda: self.sub.get("telematics/inst1/%s/position" % enc), 10, enc)
        for t in self.sub.topics():
            self.assertTrue(t.startswith("telematics/") or t.startswith("homeassistant/"), t)

    def test_stale_update_not_published(self):
        self.ready()
        new = dict(SAMPLE, position=dict(SAMPLE["position"], Timestamp=1700000100, Speed=1.0))
        old = dict(SAMPLE, position=dict(SAMPLE["position"], Timestamp=1700000000, Speed=2.0))
        self.sim.send(new)
        wait_for(lambda: (self.sub.json(SAMPLE_TOPIC) or {}).get("speed") == 3.6, 10, "new")
        self.sim.send(old)
        marker = dict(SAMPLE, device_token="marker", position={"Latitude": 1, "Longitude": 1})
        self.sim.send(marker)
        wait_for(lambda: self.sub.get("telematics/inst1/marker/position"), 10, "marker")
        self.assertEqual(self.sub.json(SAMPLE_TOPIC)["speed"], 3.6)
        self.assertEqual(self.sub.count(lambda t, p: t == SAMPLE_TOPIC), 1)

    def test_missing_and_null_fields_left_out(self):
        self.ready()
        self.sim.send({"type": "device_update", "device_token": "sparse",
                       "position": {"Latitude": 10.25, "Longitude": None, "Speed": "fast",
                                    "Heading": 90}})
        p = wait_for(lambda: self.sub.json("telematics/inst1/sparse/position"), 10, "sparse")
        # A lone latitude is no position (SPEC 2.1: coordinates only as a pair); without a
        # Timestamp the fix time is its arrival; no track token, so no trip.
        self.assertEqual(p["timestamp"], p["last_seen"])
        for k in ("timestamp", "last_seen"):
            del p[k]
        self.assertEqual(p, {"instance_id": "inst1", "device_token": "sparse", "heading": 90,
                             "driving": False})

    def test_unknown_types_and_error_message(self):
        self.ready()
        self.sim.send({"type": "something_new", "x": 1})
        self.sim.send({"type": "error", "code": 500, "message": "Internal Server Error"})
        st = wait_for(lambda: (lambda s: s if s and s.get("error") else None)(
            self.sub.json("telematics/inst1/status")), 10, "status with the error")
        self.assertEqual(st["error"]["code"], 500)
        self.assertTrue(self.bridge.alive())


class TestLifecycle(Base):
    sim_args = ("--devices", "2", "--rate", "20")

    def test_sigterm_publishes_offline_and_exits_0(self):
        self.start_bridge()
        wait_for(lambda: self.sub.get("telematics/bridge/state") == "online", 10, "online")
        self.assertEqual(self.bridge.stop(), 0)
        wait_for(lambda: self.sub.get("telematics/bridge/state") == "offline", 10, "offline")
        snap = retained_snapshot(self.broker.port)
        self.assertEqual(snap.get("telematics/bridge/state"), "offline")

    def test_will_on_crash(self):
        self.start_bridge(mqtt_extra="keepalive = 2;")
        wait_for(lambda: self.sub.get("telematics/bridge/state") == "online", 10, "online")
        self.bridge.signal(signal.SIGKILL)
        self.bridge.proc.wait(10)
        wait_for(lambda: self.sub.get("telematics/bridge/state") == "offline", 15, "the will")


class TestCli(unittest.TestCase):
    def run_bin(self, *args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("T2M_")}
        e.update(env or {})
        return subprocess.run([BIN] + list(args), capture_output=True, text=True, env=e,
                              timeout=30)

    def test_version_help_usage(self):
        r = self.run_bin("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^telematics2mqtt \d+\.\d+\.\d+")
        self.assertEqual(self.run_bin("--help").returncode, 0)
        self.assertEqual(self.run_bin("--bogus").returncode, 2)

    def test_check_config_redacts_and_bad_config_exits_2(self):
        with tempfile.TemporaryDirectory() as tmp:
            good = os.path.join(tmp, "good.conf")
            with open(good, "w") as f:
                f.write(bridge_conf("ws://127.0.0.1:1/x", "tcp://127.0.0.1:1883",
                                    token="TOPSECRET-123",
                                    mqtt_extra='username = "u"; password = "PW-SECRET-456";'))
            r = self.run_bin("-c", good, "--check-config")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("TOPSECRET-123", r.stdout + r.stderr)
            self.assertNotIn("PW-SECRET-456", r.stdout + r.stderr)
            self.assertIn("redacted", r.stdout)
            bad = os.path.join(tmp, "bad.conf")
            with open(bad, "w") as f:
                f.write('upstream = { url = "ws://x/y"; };\nmqtt = { qos = "high"; };\n')
            r = self.run_bin("-c", bad, "--check-config")
            self.assertEqual(r.returncode, 2)
            self.assertRegex(r.stderr, r"bad\.conf:2: ")
            r = self.run_bin("-c", os.path.join(tmp, "missing.conf"))
            self.assertEqual(r.returncode, 2)
            self.assertIn("missing.conf", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
