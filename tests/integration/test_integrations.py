"""Home Assistant discovery, OwnTracks, attribute topics and throttling end to end (issue 4):
real mosquitto, the real simulator (updates injected with /control/send) and the real daemon."""

import json
import os
import re
import sys
import tempfile
import time
import unittest
import urllib.request

import jinja2

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Bridge, Broker, Sim, Subscriber, bridge_conf, free_port,  # noqa: E402
                     retained_snapshot, wait_for)

TOK_A = "e4855fba-0d7e-4dbd-baad-aae9d0b90c15"  # aliased "Van 12" in ALIASES
TOK_B = "b2f0c0de-1111-2222-3333-444455556666"  # no alias: named after its token
TOK_C = "c0ffee00-aaaa-bbbb-cccc-ddddeeeeffff"
ALIASES = 'devices = ( { token = "%s"; name = "Van 12"; } );' % TOK_A
SENSORS = ("speed", "heading", "accuracy", "fix_time", "last_seen")  # on the position topic
UID = "t2m_telematics2mqtt__inst1__"  # this bridge's unique_id prefix, then <I>__<D>
T0 = 1640995200


def update(token, lat=40.7128, ts=T0, speed=7.85, acc=5.0, heading=180.0, lon=-74.006,
           track="9F6A4F03-300B-4C14-8847-DAC537E8D70C"):
    pos = {"Latitude": lat, "Longitude": lon, "Speed": speed, "Accuracy": acc,
           "Timestamp": ts, "Heading": heading}
    return {"type": "device_update", "device_token": token, "track_token": track,
            "position": {k: v for k, v in pos.items() if v is not None}}


def pos_topic(token, inst="inst1"):
    return "telematics/%s/%s/position" % (inst, token)


def tracker_topic(dev_id, inst="inst1"):
    return "homeassistant/device_tracker/t2m_%s/%s/config" % (inst, dev_id)


def sensor_topic(dev_id, sensor, inst="inst1"):
    return "homeassistant/sensor/t2m_%s/%s_%s/config" % (inst, dev_id, sensor)


def device_config_topics(dev_id, inst="inst1"):
    """Every config of a device (SPEC 4): tracker, sensors, the trip sensors, driving, event."""
    return ([tracker_topic(dev_id, inst)] + [sensor_topic(dev_id, s, inst) for s in SENSORS] +
            [sensor_topic(dev_id, t, inst) for t in ("trip_distance", "trip_duration",
                                                     "trip_avg_speed")] + [
             "homeassistant/binary_sensor/t2m_%s/%s_driving/config" % (inst, dev_id),
             "homeassistant/event/t2m_%s/%s_event/config" % (inst, dev_id)])


def render(template, raw, this_state="previous"):
    """A value_template rendered the way Home Assistant does for an MQTT sensor."""
    return jinja2.Environment().from_string(template).render(
        value=raw, value_json=json.loads(raw), this={"state": this_state}).strip()


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class Base(unittest.TestCase):
    sim_args = ("--instance", "inst1", "--token", "secret-token")

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.broker = Broker(self.tmp).start()
        # one simulated device at rate 0: nothing streams; every update here is injected
        self.sim = Sim(self.tmp, "--devices", "1", "--rate", "0", *self.sim_args).start()
        self.sub = Subscriber(self.broker.port)
        self.bridge = None
        self.failures_before = self._failures()

    def tearDown(self):
        rc = self.bridge.stop() if self.bridge and self.bridge.alive() else 0
        if self.sub:
            self.sub.close()
        self.sim.stop()
        self.broker.stop()
        if self.bridge and self._failures() > self.failures_before:
            sys.stderr.write("---- bridge log ----\n" + self.bridge.output()[-6000:])
        out = self.bridge.output() if self.bridge else ""
        self.tmpdir.cleanup()
        # a clean stop exits 0; under ASan/UBSan a report also makes it fail here
        self.assertEqual(rc, 0, "bridge exit status %r:\n%s" % (rc, out[-4000:]))

    def _failures(self):
        res = getattr(getattr(self, "_outcome", None), "result", None)
        return len(res.errors) + len(res.failures) if res else 0

    def start_bridge(self, n_instances=1, **kw):
        kw.setdefault("discovery", "entity")  # these tests check 0.x's per-entity topics
        conf = bridge_conf(self.sim.url, self.broker.url, **kw)
        self.bridge = Bridge(self.tmp, conf).start()
        wait_for(lambda: self.sim.stats()["authenticated_active"] >= n_instances, 10,
                 "bridge to authenticate")
        for i in range(1, n_instances + 1):
            wait_for(lambda: "subscribed" in (self.sub.get("telematics/inst%d/status" % i) or ""),
                     10, "inst%d subscribed" % i)
        return self.bridge

    def send(self, obj):
        r = json.loads(self.sim.send(obj))
        self.assertGreaterEqual(r["sent_to"], 1, "the sim had no client to send to")

    def wait_position(self, token, pred=lambda p: True, what=None):
        return wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(
            self.sub.json(pos_topic(token))), 10, what or "position of " + token)

    def index(self, topic, start=0):
        """Index in arrival order of the first message on topic at or after start, or None."""
        with self.sub.lock:
            for i in range(start, len(self.sub.messages)):
                if self.sub.messages[i][0] == topic:
                    return i
        return None


class TestDiscovery(Base):
    def test_configs_before_first_position_and_their_fields(self):
        self.start_bridge(extra=ALIASES)
        self.send(update(TOK_A))
        self.send(update(TOK_B, lat=51.5))
        pa = self.wait_position(TOK_A)
        self.wait_position(TOK_B)

        for tok in (TOK_A, TOK_B):
            first = self.index(pos_topic(tok))
            for t in device_config_topics(tok):
                i = self.index(t)
                self.assertIsNotNone(i, "no discovery config " + t)
                self.assertLess(i, first, t + " arrived after the first position")

        snap = retained_snapshot(self.broker.port)
        for tok, name in ((TOK_A, "Van 12"), (TOK_B, TOK_B)):
            tr = json.loads(snap[tracker_topic(tok)])  # KeyError = not retained
            self.assertEqual(tr["json_attributes_topic"], pos_topic(tok))
            self.assertEqual(tr["source_type"], "gps")
            self.assertEqual(tr["unique_id"], UID + tok)
            self.assertNotIn("object_id", tr)
            self.assertTrue(tr["default_entity_id"].startswith("device_tracker."))
            self.assertEqual(tr["availability"], [{"topic": "telematics/bridge/state",
                                                   "payload_available": "online",
                                                   "payload_not_available": "offline"}])
            dev = tr["device"]
            self.assertEqual(dev["name"], name)
            self.assertEqual(dev["identifiers"], [UID + tok])
            self.assertEqual(dev["via_device"], "telematics2mqtt")
            self.assertTrue(dev["manufacturer"] and dev["model"])
            self.assertEqual(tr["origin"]["name"], "telematics2mqtt")
            self.assertTrue(tr["origin"]["sw_version"])
            uids = {tr["unique_id"]}
            for s in SENSORS:
                sc = json.loads(snap[sensor_topic(tok, s)])
                self.assertEqual(sc["state_topic"], pos_topic(tok))
                self.assertEqual(sc["availability"], tr["availability"])
                self.assertEqual(sc["device"]["identifiers"], dev["identifiers"])
                uids.add(sc["unique_id"])
            self.assertEqual(len(uids), 1 + len(SENSORS), "unique_ids not unique")

        sc = {s: json.loads(snap[sensor_topic(TOK_A, s)]) for s in SENSORS}
        self.assertEqual((sc["speed"]["device_class"], sc["speed"]["unit_of_measurement"],
                          sc["speed"]["state_class"]), ("speed", "km/h", "measurement"))
        self.assertEqual(sc["heading"]["unit_of_measurement"], "\u00b0")
        self.assertEqual((sc["accuracy"]["device_class"], sc["accuracy"]["unit_of_measurement"]),
                         ("distance", "m"))
        self.assertEqual(sc["heading"]["state_class"], "measurement_angle")
        self.assertEqual(sc["fix_time"]["device_class"], "timestamp")
        self.assertNotIn("unit_of_measurement", sc["fix_time"])
        self.assertEqual(json.loads(snap[tracker_topic(TOK_A)])["default_entity_id"],
                         "device_tracker.van_12")
        self.assertEqual(sc["speed"]["default_entity_id"], "sensor.van_12_speed")
        self.assertTrue(is_int(sc["speed"]["suggested_display_precision"]))
        # what Home Assistant would show: the templates rendered on the real position
        raw = snap[pos_topic(TOK_A)]
        self.assertEqual(render(sc["speed"]["value_template"], raw), "28.26")
        self.assertEqual(render(sc["heading"]["value_template"], raw), "180")
        self.assertEqual(render(sc["accuracy"]["value_template"], raw), "5")
        self.assertEqual(render(sc["fix_time"]["value_template"], raw), "2022-01-01T00:00:00Z")
        self.assertEqual(render(sc["last_seen"]["value_template"], raw), json.loads(raw)["last_seen"])
        self.assertEqual(pa["gps_accuracy"], 5)

        # an update without speed and heading: the merged state keeps the last known values
        # (SPEC 2.1), so the sensors keep showing them
        self.send(update(TOK_A, lat=40.8, ts=T0 + 10, speed=None, heading=None))
        self.wait_position(TOK_A, lambda p: p["latitude"] == 40.8)
        raw = self.sub.get(pos_topic(TOK_A))
        self.assertEqual(render(sc["speed"]["value_template"], raw), "28.26")
        self.assertEqual(render(sc["heading"]["value_template"], raw), "180")
        self.assertEqual(render(sc["fix_time"]["value_template"], raw), "2022-01-01T00:00:10Z")

    def test_ids_are_collision_free_and_follow_percent_encoded_topics(self):
        self.start_bridge()
        self.send(update("a/b"))
        self.send(update("a_b"))
        wait_for(lambda: self.sub.get("telematics/inst1/a%2Fb/position") and
                 self.sub.get("telematics/inst1/a_b/position"), 10, "both positions")
        snap = retained_snapshot(self.broker.port)
        t1 = json.loads(snap[tracker_topic("a_2fb")])
        t2 = json.loads(snap[tracker_topic("a_5fb")])
        self.assertEqual(t1["json_attributes_topic"], "telematics/inst1/a%2Fb/position")
        self.assertEqual(t2["json_attributes_topic"], "telematics/inst1/a_b/position")
        self.assertNotEqual(t1["unique_id"], t2["unique_id"])
        self.assertEqual(t1["device"]["name"], "a/b")


class TestBridgeDevice(Base):
    sim_args = ("--token", "secret-token")  # any instance id

    def test_connectivity_binary_sensor_per_instance(self):
        inst = '( { id = "inst1"; access_token = "secret-token"; }, ' \
               '{ id = "inst2"; access_token = "secret-token"; } )'
        self.start_bridge(n_instances=2, instances=inst)
        snap = retained_snapshot(self.broker.port)
        for i in ("inst1", "inst2"):
            t = "homeassistant/binary_sensor/t2m_bridge_telematics2mqtt/%s_connected/config" % i
            c = json.loads(snap[t])
            self.assertEqual(c["device_class"], "connectivity")
            self.assertEqual(c["state_topic"], "telematics/%s/status" % i)
            self.assertEqual(c["device"]["identifiers"], ["telematics2mqtt"])
            self.assertEqual(c["availability"][0]["topic"], "telematics/bridge/state")
            status = snap["telematics/%s/status" % i]
            self.assertEqual(render(c["value_template"], status), c["payload_on"])
            self.assertEqual(render(c["value_template"], '{"state":"reconnecting"}'),
                             c["payload_off"])


class TestResend(Base):
    def setup_two_devices(self, **kw):
        self.start_bridge(extra=ALIASES, **kw)
        self.send(update(TOK_A))
        self.send(update(TOK_B, lat=51.5))
        self.send(update(TOK_A, lat=40.9, ts=T0 + 5))
        self.wait_position(TOK_A, lambda p: p["latitude"] == 40.9)
        self.wait_position(TOK_B)
        bridge_cfg = "homeassistant/binary_sensor/t2m_bridge_telematics2mqtt/inst1_connected/config"
        wait_for(lambda: self.sub.get(bridge_cfg), 5, "bridge config")
        configs = sorted(t for t in self.sub.topics("homeassistant/") if t.endswith("/config"))
        # the bridge device: connected, state and token expiry per instance, and the device count
        self.assertEqual(len(configs), 2 * len(device_config_topics(TOK_A)) + 4)
        return configs, {t: self.sub.get(pos_topic(t)) for t in (TOK_A, TOK_B)}

    def assert_all_again(self, configs, positions, start=0):
        """Every config and the latest position of every device arrived (after `start`), each
        device's configs before its position."""
        want = configs + [pos_topic(t) for t in positions]
        wait_for(lambda: all(self.index(t, start) is not None for t in want), 10,
                 "every config and position again")
        for tok, payload in positions.items():
            i = self.index(pos_topic(tok), start)
            self.assertEqual(self.sub.messages[i][1], payload)
            for t in device_config_topics(tok):
                self.assertLess(self.index(t, start), i, t + " after the position")

    def test_resend_on_home_assistant_birth(self):
        configs, positions = self.setup_two_devices()
        self.sub.clear()
        # offline (HA stopping) must not trigger anything; online (HA's birth) re-sends
        self.sub.client.publish("homeassistant/status", "offline", qos=1)
        self.sub.client.publish("homeassistant/status", "online", qos=1)
        self.assert_all_again(configs, positions)
        for t in configs:
            self.assertEqual(self.sub.count(lambda tt, p: tt == t), 1, t + " sent twice")

    def received(self):
        try:
            with urllib.request.urlopen("http://%s/metrics" % self.http, timeout=2) as r:
                body = r.read().decode()
        except OSError:
            return 0
        m = re.search(r"^t2m_updates_received_total (\d+)", body, re.M)
        return int(m.group(1)) if m else 0

    def test_broker_restart_brings_back_configs_and_latest_positions(self):
        self.http = "127.0.0.1:%d" % free_port()
        configs, positions = self.setup_two_devices(http=self.http)
        for attempt in range(3):
            self.sub.close()
            self.sub = None
            self.broker.stop()
            # while the broker is away: a newer position of A and a device never seen before
            lat = 41.0 + attempt / 10
            self.send(update(TOK_A, lat=lat, ts=T0 + 10 + attempt))
            self.send(update(TOK_C, lat=-33.9))
            wait_for(lambda: self.received() >= 5 + 2 * attempt, 10, "bridge to get them")
            self.broker.start()
            self.sub = Subscriber(self.broker.port)
            wait_for(lambda: self.sub.get("telematics/bridge/state") == "online", 15,
                     "bridge back online")
            # The bridge reconnects 0.5-1 s after the loss; this subscriber normally connects
            # first and sees the re-send live (retain flag 0). If the bridge won that race the
            # order cannot be observed: restart again.
            if not self.sub.messages[self.index("telematics/bridge/state")][2]:
                break
        else:
            self.fail("the bridge reconnected before the subscriber three times")
        positions[TOK_A] = self.wait_position(TOK_A, lambda p: p["latitude"] == lat) and \
            self.sub.get(pos_topic(TOK_A))
        positions[TOK_C] = self.wait_position(TOK_C) and self.sub.get(pos_topic(TOK_C))
        configs = sorted(configs + device_config_topics(TOK_C))
        self.assert_all_again(configs, positions)
        # SPEC section 8: online, then discovery, then what was queued
        online = self.index("telematics/bridge/state")
        first_cfg = min(self.index(t) for t in configs)
        self.assertLess(online, first_cfg)
        snap = retained_snapshot(self.broker.port)
        for t in configs:
            self.assertIn(t, snap)
        for tok, payload in positions.items():
            self.assertEqual(snap[pos_topic(tok)], payload)


class TestDisabled(Base):
    def test_homeassistant_disabled_publishes_nothing_under_homeassistant(self):
        self.start_bridge(extra='homeassistant = { enabled = false; };')
        self.send(update(TOK_A))
        self.wait_position(TOK_A)
        self.sub.client.publish("homeassistant/status", "online", qos=1)
        wait_for(lambda: self.sub.get("homeassistant/status"), 5, "our own birth message")
        self.send(update(TOK_A, lat=40.8, ts=T0 + 1))
        self.wait_position(TOK_A, lambda p: p["latitude"] == 40.8)
        snap = retained_snapshot(self.broker.port)
        seen = [t for t in list(snap) + self.sub.topics("homeassistant/")
                if t.startswith("homeassistant/") and t != "homeassistant/status"]
        self.assertEqual(seen, [])


class TestUnits(Base):
    def test_imperial_units_and_no_timestamp_sensor_with_unix_timestamps(self):
        self.start_bridge(units='system = "imperial"; timestamp = "unix";')
        self.send(update(TOK_A))
        p = self.wait_position(TOK_A)
        self.assertEqual(p["timestamp"], T0)
        snap = retained_snapshot(self.broker.port)
        speed = json.loads(snap[sensor_topic(TOK_A, "speed")])
        acc = json.loads(snap[sensor_topic(TOK_A, "accuracy")])
        self.assertEqual(speed["unit_of_measurement"], "mph")
        self.assertEqual(acc["unit_of_measurement"], "ft")
        raw = snap[pos_topic(TOK_A)]
        self.assertEqual(render(speed["value_template"], raw), "17.56")
        self.assertEqual(render(acc["value_template"], raw), "16.4")
        self.assertEqual([t for t in snap if "timestamp" in t and t.startswith("homeassistant/")],
                         [])
        self.assertIn(tracker_topic(TOK_A), snap)

    def test_knots_speed_unit(self):
        self.start_bridge(units='speed = "kn";')
        self.send(update(TOK_A))
        self.wait_position(TOK_A)
        snap = retained_snapshot(self.broker.port)
        self.assertEqual(json.loads(snap[sensor_topic(TOK_A, "speed")])["unit_of_measurement"],
                         "kn")
        self.assertIn(sensor_topic(TOK_A, "fix_time"), snap)


class TestOwnTracks(Base):
    def test_owntracks_payload_types(self):
        # imperial on purpose: OwnTracks' vel is km/h and acc metres whatever units says
        self.start_bridge(extra=ALIASES + ' owntracks = { enabled = true; };',
                          units='system = "imperial";')
        self.send(update(TOK_A, acc=0.0))
        self.send(update(TOK_B, lat=51.5, acc=5.4, heading=359.7, speed=10.0))
        ta, tb = "owntracks/inst1/" + TOK_A, "owntracks/inst1/" + TOK_B
        wait_for(lambda: self.sub.get(ta) and self.sub.get(tb), 10, "OwnTracks locations")
        snap = retained_snapshot(self.broker.port)
        a, b = json.loads(snap[ta]), json.loads(snap[tb])
        for o in (a, b):
            self.assertEqual(set(o), {"_type", "lat", "lon", "tst", "vel", "acc", "cog", "tid"})
            self.assertEqual(o["_type"], "location")
            for k in ("tst", "vel", "acc", "cog"):
                self.assertTrue(is_int(o[k]), "%s is %r, not an int" % (k, o[k]))
            self.assertGreaterEqual(o["acc"], 1)
            self.assertEqual(o["tst"], T0)
            self.assertEqual(len(o["tid"]), 2)
        self.assertEqual((a["lat"], a["lon"], a["vel"], a["acc"], a["cog"], a["tid"]),
                         (40.7128, -74.006, 28, 1, 180, "VA"))
        self.assertEqual((b["lat"], b["vel"], b["acc"], b["cog"], b["tid"]),
                         (51.5, 36, 5, 0, "B2"))


class TestAttributeTopics(Base):
    def test_every_field_as_a_retained_plain_value(self):
        self.start_bridge(mqtt_extra="attribute_topics = true;")
        self.send(update(TOK_A, speed=7.85, acc=5.0))
        base = "telematics/inst1/%s/" % TOK_A
        want = {"latitude": "40.7128", "longitude": "-74.006", "speed": "28.26",
                "accuracy": "5", "heading": "180", "timestamp": "2022-01-01T00:00:00Z",
                "track_token": "9F6A4F03-300B-4C14-8847-DAC537E8D70C"}
        wait_for(lambda: all(self.sub.get(base + k) for k in want), 10, "attribute topics")
        snap = retained_snapshot(self.broker.port)
        self.assertEqual({k: snap.get(base + k) for k in want}, want)
        self.assertIn(base + "position", snap)
        # a later update without heading leaves the retained heading as it was
        self.send(update(TOK_A, lat=40.8, ts=T0 + 1, heading=None))
        wait_for(lambda: self.sub.get(base + "latitude") == "40.8", 10, "new latitude")
        snap = retained_snapshot(self.broker.port)
        self.assertEqual(snap[base + "heading"], "180")
        self.assertEqual(snap[base + "timestamp"], "2022-01-01T00:00:01Z")


class TestThrottle(Base):
    def test_min_interval_publishes_at_most_one_per_interval_and_keeps_the_latest(self):
        interval, rate, n = 1.0, 20.0, 50
        self.start_bridge(mqtt_extra="min_interval = %.1f;" % interval)
        lats = [round(10 + i / 1000, 4) for i in range(n)]
        t_start = time.monotonic()
        for i, lat in enumerate(lats):
            # pacing the injection at `rate`, not waiting for anything
            delay = t_start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.send(update(TOK_A, lat=lat, ts=T0 + i))
        self.wait_position(TOK_A, lambda p: p["latitude"] == lats[-1], "the last update")
        elapsed = time.monotonic() - t_start
        got = [json.loads(p)["latitude"] for t, p, r in self.sub.messages if t == pos_topic(TOK_A)]
        self.assertEqual(got[0], lats[0], "the first update is published at once")
        self.assertEqual(got[-1], lats[-1])
        self.assertEqual(got, sorted(set(got)), "out of order or repeated")
        self.assertLessEqual(len(got), int(elapsed / interval) + 2, got)
        self.assertGreaterEqual(len(got), 2)
        snap = retained_snapshot(self.broker.port)
        self.assertEqual(json.loads(snap[pos_topic(TOK_A)])["latitude"], lats[-1])
        self.assertEqual(json.loads(snap[pos_topic(TOK_A)])["timestamp"],
                         "2022-01-01T00:00:49Z")


if __name__ == "__main__":
    unittest.main()
