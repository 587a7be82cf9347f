"""Issue 11, SPEC 2.1-2.2 end to end: the merged device state on the broker, trips, zones,
events, expiry, and restarts that lose nothing (the broker's retained messages are the bridge's
memory). mosquitto + telematics-sim (updates sent one by one through its control channel) + the
bridge, on loopback."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import (BIN, SLOW, Bridge, Broker, Sim, Subscriber, free_port,  # noqa: E402
                     retained_snapshot, wait_for)

T0 = 1700000000
DEV = "0aace1bd-0376-4ff7-9c9b-4d5b0a6d8d01"
POS = "telematics/inst1/%s/position" % DEV
TRIP = "telematics/inst1/%s/trip" % DEV
EVENT = "telematics/inst1/%s/event" % DEV


def update(ts, lat=None, lon=None, track="TRIP-1", speed=None, acc=None, dev=DEV):
    p = {"Timestamp": ts}
    if lat is not None:
        p["Latitude"] = lat
    if lon is not None:
        p["Longitude"] = lon
    if speed is not None:
        p["Speed"] = speed
    if acc is not None:
        p["Accuracy"] = acc
    u = {"type": "device_update", "device_token": dev, "position": p}
    if track:
        u["track_token"] = track
    return u


class Base(unittest.TestCase):
    extra = ""

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.broker = Broker(self.tmp, extra="persistence false").start()
        self.sim = Sim(self.tmp, "--rate", "0", "--token", "tok").start()
        self.sub = Subscriber(self.broker.port)
        self.http_port = free_port()
        self.bridges = []

    def tearDown(self):
        harness.stop_and_check(self, self.bridges,
                               (self.sub.close, self.sim.stop, self.broker.stop, self.tmpdir.cleanup))

    def conf(self):
        return """
upstream = { url = "%s"; backoff_min = 0.05; backoff_max = 0.5; };
instances = ( { id = "inst1"; access_token = "tok"; } );
mqtt = { url = "%s"; };
homeassistant = { enabled = false; };
units = { timestamp = "unix"; };
http = { listen = "127.0.0.1:%d"; };
log = { level = "debug"; };
%s
""" % (self.sim.url, self.broker.url, self.http_port, self.extra)

    def start_bridge(self):
        b = Bridge(self.tmp, self.conf()).start()
        self.bridges.append(b)
        n = self.sim.stats()["authenticated"]
        wait_for(lambda: self.sim.stats()["authenticated"] > n and
                 self.sim.stats()["authenticated_active"] >= 1, 15, "the bridge authenticated")
        return b

    def send(self, u):
        self.sim.send(u)

    def position(self, cond=lambda p: True, what="the position"):
        return wait_for(lambda: (lambda p: p if p and cond(p) else None)(self.sub.json(POS)), 10,
                        what)

    def events(self):
        with self.sub.lock:
            return [json.loads(p) for t, p, _ in self.sub.messages if t == EVENT]

    def metric(self, name):
        return harness.metrics(self.http_port).get(name, 0)


class TestMergedState(Base):
    def test_partial_updates_keep_coordinates(self):
        """The bug users met: an update with only a speed left a retained position without
        coordinates, and Home Assistant's tracker lost the device at its next restart."""
        self.start_bridge()
        self.send(update(T0, 52.37, 4.89, acc=5))
        self.position(lambda p: p.get("latitude") == 52.37)
        self.send({"type": "device_update", "device_token": DEV, "position": {"Speed": 6.71,
                                                                             "Timestamp": T0 + 1}})
        p = self.position(lambda p: p["timestamp"] == T0 + 1, "the speed-only update")
        self.assertEqual((p["latitude"], p["longitude"], p["speed"], p["gps_accuracy"]),
                         (52.37, 4.89, 24.16, 5))
        snap = retained_snapshot(self.broker.port, "telematics/#")
        self.assertEqual(json.loads(snap[POS])["latitude"], 52.37)
        self.assertTrue(json.loads(snap[POS])["driving"])


class TestTrips(Base):
    extra = "state = { trip_timeout = 2; };"

    def test_trip_started_retained_and_ended_by_timeout(self):
        self.start_bridge()
        self.send(update(T0, 52.0, 4.0, speed=10))
        self.send(update(T0 + 60, 52.0, 4.01, speed=20))  # 684.6 m east
        wait_for(lambda: any(e["event"] == "trip_started" for e in self.events()), 10,
                 "trip_started")
        started = [e for e in self.events() if e["event"] == "trip_started"][0]
        self.assertEqual((started["track_token"], started["latitude"], started["instance_id"]),
                         ("TRIP-1", 52.0, "inst1"))
        # SPEC v3 2.1: the live trip rides in the state; B/I/D/trip went at the start
        trip = wait_for(lambda: (lambda t: t if t and t["updates"] == 2 else None)(
            (self.sub.json(POS) or {}).get("trip")), 10, "the live trip in the state")
        self.assertEqual(self.sub.json(TRIP)["updates"], 1)
        self.assertEqual(trip["state"], "driving")
        self.assertAlmostEqual(trip["distance"], 0.68, places=2)
        self.assertEqual((trip["start"], trip["duration"], trip["max_speed"]), (T0, 60, 72))
        self.assertNotIn("end", trip)
        # no update for trip_timeout: the trip ends
        wait_for(lambda: any(e["event"] == "trip_ended" for e in self.events()), 10,
                 "trip_ended")
        ended = [e for e in self.events() if e["event"] == "trip_ended"][0]
        self.assertEqual(ended["trip"]["state"], "ended")
        self.assertEqual(ended["trip"]["end"], T0 + 60)
        snap = retained_snapshot(self.broker.port, "telematics/#")
        self.assertEqual(json.loads(snap[TRIP])["state"], "ended")
        self.assertFalse(json.loads(snap[POS])["driving"])
        self.assertNotIn(EVENT, snap)  # events are not retained

    def test_new_track_token_ends_the_trip(self):
        self.start_bridge()
        self.send(update(T0, 1.0, 1.0))
        self.send(update(T0 + 10, 1.0, 1.001, track="TRIP-2"))
        wait_for(lambda: [e["event"] for e in self.events()] ==
                 ["trip_started", "trip_ended", "trip_started"], 10, "the second trip")
        self.assertEqual(self.sub.json(TRIP)["track_token"], "TRIP-2")


class TestRestart(Base):
    def test_killed_mid_trip_continues(self):
        """SIGKILL in the middle of a trip: the restarted bridge reads its retained position and
        trip back, continues the trip (same token, distance adding, no second trip_started), and
        still drops an update older than the retained position as stale."""
        b = self.start_bridge()
        self.send(update(T0, 48.0, 11.0))
        self.send(update(T0 + 30, 48.0, 11.01))
        trip = wait_for(lambda: (lambda t: t if t and t["updates"] == 2 else None)(
            (self.sub.json(POS) or {}).get("trip")), 10, "the trip")
        d1 = trip["distance"]
        self.assertGreater(d1, 0.7)
        b.signal(signal.SIGKILL)
        b.proc.wait(10)
        self.bridges.remove(b)
        self.sub.clear()
        b2 = self.start_bridge()
        wait_for(lambda: "read back" in b2.output(), 10, "the read-back")
        self.send(update(T0 + 10, 0.0, 0.0))  # older than the retained position: stale
        self.send(update(T0 + 60, 48.0, 11.02))
        trip = wait_for(lambda: (lambda t: t if t and t["updates"] == 3 else None)(
            (self.sub.json(POS) or {}).get("trip")), 10, "the continued trip")
        self.assertEqual((trip["track_token"], trip["start"], trip["state"]),
                         ("TRIP-1", T0, "driving"))
        self.assertAlmostEqual(trip["distance"], d1 * 2, delta=0.02)
        self.assertEqual([e for e in self.events() if e["event"] == "trip_started"], [])
        wait_for(lambda: self.metric('t2m_updates_dropped_total{reason="stale"}') >= 1, 10,
                 "the stale update counted")
        self.assertEqual(self.sub.json(POS)["longitude"], 11.02)


class TestZonesAndExpiry(Base):
    extra = """zones = ( { name = "Depot"; latitude = 52.0; longitude = 4.0; radius = 150.0; } );
state = { expire_after = 2; };"""

    def test_zone_events_then_expiry_clears_everything(self):
        self.start_bridge()
        self.send(update(T0, 52.0005, 4.0, acc=10))  # 56 m from the centre
        p = self.position(lambda p: p.get("zone") == "Depot", "in the zone")
        self.assertEqual(p["zone"], "Depot")
        self.send(update(T0 + 10, 52.01, 4.0, acc=10))
        wait_for(lambda: [e["event"] for e in self.events() if e["event"].startswith("zone")] ==
                 ["zone_entered", "zone_left"], 10, "zone events")
        left = [e for e in self.events() if e["event"] == "zone_left"][0]
        self.assertEqual((left["zone"], left["latitude"]), ("Depot", 52.01))
        # silent for expire_after: removed, with its retained topics cleared
        wait_for(lambda: any(e["event"] == "device_removed" for e in self.events()), 15,
                 "device_removed")
        removed = [e for e in self.events() if e["event"] == "device_removed"][0]
        self.assertEqual(removed["reason"], "expired")
        snap = retained_snapshot(self.broker.port, "telematics/#")
        self.assertEqual([t for t in snap if DEV in t], [])
        wait_for(lambda: self.metric("t2m_devices") == 0, 10, "no device left")


class TestConfig(unittest.TestCase):
    def test_long_base_topic_is_a_config_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "c.conf")
            with open(path, "w") as f:
                f.write('instances = ( { id = "i"; access_token = "t"; } );\n'
                        'mqtt = {\n  base_topic = "%s";\n};\n' % ("b" * 3000))
            env = {k: v for k, v in os.environ.items() if not k.startswith("T2M_")}
            r = subprocess.run(harness.PREFIX + [BIN, "-c", path, "--check-config"], env=env,
                               capture_output=True, text=True, timeout=30 * SLOW)
            self.assertEqual(r.returncode, 2)
            self.assertIn("%s:3: mqtt.base_topic: too long (3000 bytes)" % path, r.stderr)


if __name__ == "__main__":
    unittest.main()
