"""Issue 13, SPEC 2.3, 4 and 5 end to end: B/bridge/info, the bridge/request API with its
bad-input corpus, withdrawal of Home Assistant configs that no longer apply (and only this
bridge's), events on the event entity's topic, OwnTracks transitions. mosquitto +
telematics-sim + the bridge on loopback."""

import json
import os
import sys
import unittest

import jinja2

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Bridge, retained_snapshot, wait_for  # noqa: E402

TOKEN = "ha-test-token-123456"
DEV = "0aace1bd-0376-4ff7-9c9b-4d5b0a6d8d01"
DEV2 = "b2f0c0de-1111-2222-3333-444455556666"
T0 = 1700000000
REQ = "telematics/bridge/request/"
RESP = "telematics/bridge/response/"


def update(dev, ts, lat=52.0, lon=4.0, track="T1", acc=5.0):
    return {"type": "device_update", "device_token": dev, "track_token": track,
            "position": {"Latitude": lat, "Longitude": lon, "Speed": 10.0, "Accuracy": acc,
                         "Timestamp": ts, "Heading": 90.0}}


def owntracks_transition_consumer(msg):
    """What Home Assistant's OwnTracks integration (components/owntracks/messages.py) reads of a
    transition, with its checks: (location, event, gps, accuracy), or an exception."""
    if msg.get("_type") != "transition":
        raise ValueError("not a transition")
    if msg.get("desc") is None:
        raise ValueError("Location missing from Entering/Leaving message")
    if msg["event"] not in ("enter", "leave"):
        raise ValueError("Misformatted mqtt msgs, _type=transition, event=%s" % msg["event"])
    gps = (msg["lat"], msg["lon"]) if msg["lat"] is not None and msg["lon"] is not None else None
    return msg["desc"].lstrip("-"), msg["event"], gps, msg.get("acc"), msg.get("t"), msg["tid"]


class Base(harness.BridgeCase):
    token = TOKEN

    def start_bridge(self, extra="", mqtt="", client_id="telematics2mqtt", instance="inst1",
                     discovery="entity"):
        if "homeassistant" not in extra:  # these tests check 0.x's per-entity topics
            extra += '\nhomeassistant = { discovery = "%s"; };' % discovery
        conf = """
upstream = { url = "%s"; backoff_min = 0.05; backoff_max = 0.5; };
instances = ( { id = "%s"; access_token = "%s"; } );
mqtt = { url = "%s"; client_id = "%s"; password = "hunter2-secret"; username = "u"; %s };
http = { listen = ""; };
log = { level = "info"; };
%s
""" % (self.sim.url, instance, TOKEN, self.broker.url, client_id, mqtt, extra)
        b = Bridge(self.tmp, conf).start()
        self.bridges.append(b)
        n = self.sim.stats()["authenticated"]
        wait_for(lambda: self.sim.stats()["authenticated"] > n and
                 self.sim.stats()["authenticated_active"] >= 1, 15, "authenticated")
        wait_for(lambda: "read back" in b.output(), 15, "the read-back")
        return b

    def stop_bridge(self, b):
        self.assertEqual(b.stop(), 0)
        self.bridges.remove(b)

    def request(self, cmd, payload, key=None):
        """Publishes one request and waits for its response (matched by the transaction)."""
        self.sub.client.publish(REQ + cmd, payload, qos=1)
        return wait_for(lambda: self.response(cmd, key), 10, "the response to " + cmd)

    def response(self, cmd, key=None):
        with self.sub.lock:
            for t, p, _ in reversed(self.sub.messages):
                if t == RESP + cmd:
                    r = json.loads(p)
                    if key is None or r.get("transaction") == key:
                        return r
        return None

    def configs(self, snap, uid_prefix="t2m_telematics2mqtt__"):
        return {t: json.loads(p) for t, p in snap.items() if t.startswith("homeassistant/") and
                p and json.loads(p).get("unique_id", "").startswith(uid_prefix)}


class TestBridgeInfo(Base):
    def test_info_retained_and_secret_free(self):
        self.start_bridge()
        self.sim.send(update(DEV, T0))
        info = wait_for(lambda: (lambda i: i if i and i["devices"] == 1 else None)(
            self.sub.json("telematics/bridge/info")), 10, "bridge/info with the device")
        self.assertEqual(info["instances"], [{"id": "inst1", "state": "subscribed"}])
        self.assertTrue(info["version"])
        self.assertTrue(info["started"])
        self.assertEqual(info["config"]["mqtt"]["base_topic"], "telematics")
        self.assertEqual(info["config"]["mqtt"]["password"], "<redacted>")
        raw = retained_snapshot(self.broker.port)["telematics/bridge/info"]
        self.assertNotIn("hunter2-secret", raw)
        self.assertNotIn(TOKEN, raw)


class TestRequests(Base):
    def test_remove_rename_devices_health_options(self):
        b = self.start_bridge(extra='owntracks = { enabled = true; };',
                              mqtt="attribute_topics = true;")
        self.sim.send(update(DEV, T0))
        self.sim.send(update(DEV2, T0))
        wait_for(lambda: self.sub.get("telematics/inst1/%s/position" % DEV2), 10, "positions")

        r = self.request("health_check", '{"transaction":"h1"}', "h1")
        self.assertEqual((r["status"], r["data"]["healthy"]), ("ok", True))

        r = self.request("devices", '{"instance":"inst1","transaction":7}', 7)
        self.assertEqual(r["status"], "ok")
        self.assertEqual(sorted(d["device_token"] for d in r["data"]), sorted([DEV, DEV2]))

        r = self.request("device/rename", json.dumps(
            {"instance": "inst1", "device": DEV, "name": "Van 12", "transaction": "n1"}), "n1")
        self.assertEqual(r["status"], "ok")
        wait_for(lambda: (self.sub.json("telematics/inst1/%s/position" % DEV) or {}).get("name")
                 == "Van 12", 10, "the renamed state")
        tracker = "homeassistant/device_tracker/t2m_inst1/%s/config" % DEV
        wait_for(lambda: (self.sub.json(tracker) or {}).get("device", {}).get("name") ==
                 "Van 12", 10, "the renamed discovery")

        r = self.request("options", '{"log_level":"debug","transaction":"o1"}', "o1")
        self.assertEqual((r["status"], r["data"]["log_level"]), ("ok", "debug"))
        wait_for(lambda: "log level now debug" in b.output(), 5, "the new level")

        # remove: every retained topic of the device goes, and the bridge forgets it
        r = self.request("device/remove", json.dumps(
            {"instance": "inst1", "device": DEV, "transaction": {"n": [1, 2]}}), {"n": [1, 2]})
        self.assertEqual(r["status"], "ok")
        wait_for(lambda: any(t.endswith("/event") and '"device_removed"' in p
                             for t, p, _ in self.sub.messages), 10, "device_removed")
        snap = retained_snapshot(self.broker.port)
        self.assertEqual([t for t in snap if DEV in t], [])
        self.assertTrue([t for t in snap if DEV2 in t])  # the other device keeps everything
        r = self.request("devices", '{"transaction":"d2"}', "d2")
        self.assertEqual([d["device_token"] for d in r["data"]], [DEV2])
        r = self.request("device/remove", json.dumps(
            {"instance": "inst1", "device": DEV, "transaction": "again"}), "again")
        self.assertEqual((r["status"], r["error"]), ("error", "unknown device"))

    def test_rename_survives_a_restart(self):
        """SPEC 2.3 (issue 22): the name is part of the retained state: read back after a
        restart, it stays the device's name (0.2 lost it)."""
        b = self.start_bridge()
        self.sim.send(update(DEV, T0))
        pos = "telematics/inst1/%s/position" % DEV
        wait_for(lambda: self.sub.get(pos), 10, "the position")
        r = self.request("device/rename", json.dumps(
            {"instance": "inst1", "device": DEV, "name": "Van 7", "transaction": "r"}), "r")
        self.assertEqual(r["status"], "ok")
        wait_for(lambda: (self.sub.json(pos) or {}).get("name") == "Van 7", 10, "renamed")
        self.stop_bridge(b)
        self.sub.clear()
        self.start_bridge()
        self.sim.send(update(DEV, T0 + 1))
        wait_for(lambda: (self.sub.json(pos) or {}).get("timestamp"), 10, "the next position")
        self.assertEqual(self.sub.json(pos).get("name"), "Van 7")

    def test_bad_requests_each_get_an_error_and_change_nothing(self):
        b = self.start_bridge()
        self.sim.send(update(DEV, T0))
        wait_for(lambda: self.sub.get("telematics/inst1/%s/position" % DEV), 10, "position")
        corpus = [
            ("device/remove", "not json"),
            ("device/remove", "[1,2]"),
            ("device/remove", '{"instance":"inst1"}'),
            ("device/remove", '{"instance":"nope","device":"%s"}' % DEV),
            ("device/remove", '{"instance":"inst1","device":5}'),
            ("device/rename", '{"instance":"inst1","device":"%s"}' % DEV),
            ("device/rename", '{"instance":"inst1","device":"%s","name":"a\\nb"}' % DEV),
            ("options", '{"log_level":"loud"}'),
            ("options", "{}"),
            ("no/such/command", "{}"),
            ("devices", '{"instance":""}'),
            ("devices", b"\xff\xfe"),
            ("devices", ""),
            ("health_check", '{"transaction":"' + "x" * 600 + '"}'),
            ("devices", "{" + " " * (1 << 20) + "}"),  # 1 MB
        ]
        for cmd, payload in corpus:
            self.sub.client.publish(REQ + cmd, payload, qos=1)
        wait_for(lambda: self.sub.count(lambda t, p: t.startswith(RESP)) >= len(corpus), 20,
                 "a response to every request")
        responses = [json.loads(p) for t, p, _ in self.sub.messages if t.startswith(RESP)]
        self.assertEqual(len(responses), len(corpus))
        self.assertTrue(all(r["status"] == "error" and r["error"] for r in responses),
                        responses)
        # a storm of bad requests: still one response each, no crash
        for i in range(300):
            self.sub.client.publish(REQ + "device/remove", '{"transaction":%d}' % i, qos=0)
        wait_for(lambda: self.sub.count(lambda t, p: t == RESP + "device/remove") >= 300, 30,
                 "300 responses")
        self.assertTrue(b.alive())
        snap = retained_snapshot(self.broker.port)
        self.assertIn("telematics/inst1/%s/position" % DEV, snap)  # nothing removed


UID = "t2m_telematics2mqtt__inst1__" + DEV
DEVICE_CFG = "homeassistant/device/%s/config" % UID
BRIDGE_CFG = "homeassistant/device/t2m_bridge_telematics2mqtt/config"


def render(template, payload):
    """A template rendered as Home Assistant does (its to_json filter added)."""
    env = jinja2.Environment()
    env.filters["to_json"] = json.dumps
    return env.from_string(template).render(value=payload, value_json=json.loads(payload))


class TestDeviceDiscovery(Base):
    """SPEC v3 4 (issue 20): device-based discovery is the default, one retained config per
    device and one for the bridge; an installation of 0.x (one config per entity) is migrated as
    Home Assistant documents it, every unique_id kept. SPEC v3 2.1: one message per update."""

    def test_one_config_per_device_one_message_per_update(self):
        self.start_bridge(discovery="device")
        for i in range(6):
            self.sim.send(update(DEV, T0 + i, lat=52.0 + i / 1000))
        pos = "telematics/inst1/%s/position" % DEV
        wait_for(lambda: (self.sub.json(pos) or {}).get("trip", {}).get("updates") == 6, 10,
                 "the sixth update, its trip inside the state")
        state = self.sub.get(pos)
        # One message per update: the trip topic went once, when the trip started.
        self.assertEqual(self.sub.count(lambda t, p: t == pos), 6)
        self.assertEqual(self.sub.count(lambda t, p: t == "telematics/inst1/%s/trip" % DEV), 1)
        trip = json.loads(state)["trip"]
        self.assertEqual((trip["state"], trip["track_token"], trip["updates"]), ("driving", "T1", 6))
        self.assertGreater(trip["distance"], 0)
        snap = retained_snapshot(self.broker.port, "homeassistant/#")
        # one config per device (and one for the bridge), nothing per entity
        self.assertEqual(sorted(t for t in snap if t.endswith("/config")),
                         sorted([DEVICE_CFG, BRIDGE_CFG]))
        cfg = json.loads(snap[DEVICE_CFG])
        self.assertEqual(cfg["device"]["identifiers"], [UID])
        self.assertEqual(cfg["origin"]["name"], "telematics2mqtt")
        cmps = cfg["components"]
        self.assertEqual(cmps["tracker"]["platform"], "device_tracker")
        self.assertEqual(cmps["tracker"]["unique_id"], UID)
        self.assertEqual(cmps["speed"]["unique_id"], UID + "_speed")
        for k in ("trip_distance", "trip_duration", "trip_avg_speed"):
            self.assertEqual(cmps[k]["state_topic"], pos)
        # recorder-light: times that move because time passes are off by default and are no
        # tracker attributes
        self.assertIs(cmps["last_seen"]["enabled_by_default"], False)
        self.assertIs(cmps["fix_time"]["enabled_by_default"], False)
        attrs = json.loads(render(cmps["tracker"]["json_attributes_template"], state))
        self.assertEqual(attrs["latitude"], json.loads(state)["latitude"])
        self.assertIn("gps_accuracy", attrs)
        self.assertNotIn("last_seen", attrs)
        self.assertNotIn("timestamp", attrs)
        self.assertNotIn("trip", attrs)
        self.assertEqual(float(render(cmps["trip_distance"]["value_template"], state)),
                         trip["distance"])
        self.assertEqual(float(render(cmps["trip_duration"]["value_template"], state)), 5)
        bridge = json.loads(snap[BRIDGE_CFG])
        self.assertIn("inst1_connected", bridge["components"])

    def test_migration_from_per_entity_configs(self):
        """A retained 0.x config set (the per-entity form, as this release still writes it with
        discovery = "entity") on a real broker: the device-based bridge sends
        {"migrate_discovery": true} to every old topic, then its device configs, then clears
        the old topics; every unique_id stays."""
        b = self.start_bridge(discovery="entity")
        self.sim.send(update(DEV, T0))
        tracker = "homeassistant/device_tracker/t2m_inst1/%s/config" % DEV
        wait_for(lambda: self.sub.get(tracker), 10, "the 0.x tracker config")
        old = wait_for(lambda: (lambda c: c if len(c) >= 14 else None)(
            self.configs(retained_snapshot(self.broker.port))), 10, "the 0.x configs")
        old_uids = {c["unique_id"] for c in old.values()}
        self.stop_bridge(b)
        self.sub.clear()

        self.start_bridge(discovery="device")
        wait_for(lambda: self.sub.get(DEVICE_CFG) and self.sub.get(BRIDGE_CFG), 10,
                 "the device configs")
        msgs = list(self.sub.messages)
        first = {t: i for i, (t, p, r) in reversed(list(enumerate(msgs)))}
        for t in old:
            marker = [i for i, (mt, p, r) in enumerate(msgs)
                      if mt == t and json.loads(p or "{}") == {"migrate_discovery": True}]
            self.assertTrue(marker, "no migrate_discovery on " + t)
            device_cfg = BRIDGE_CFG if "t2m_bridge_" in t else DEVICE_CFG
            self.assertLess(marker[0], first[device_cfg], t)
        # then the old topics are cleared (after the connection stayed up a few seconds)
        wait_for(lambda: not (set(old) & set(retained_snapshot(self.broker.port))), 20,
                 "the old topics cleared")
        snap = retained_snapshot(self.broker.port, "homeassistant/#")
        new_uids = set()
        for t in (DEVICE_CFG, BRIDGE_CFG):
            new_uids |= {c["unique_id"] for c in json.loads(snap[t])["components"].values()}
        self.assertEqual(old_uids - new_uids, set())  # no entity lost its id


class TestWithdrawal(Base):
    def test_stale_configs_withdrawn_and_another_bridge_untouched(self):
        zones = 'zones = ( { name = "Depot"; latitude = 52.0; longitude = 4.0; radius = 150.0; } );'
        # another bridge on the broker (its own client id, instance and base topic)
        other = self.start_bridge(client_id="other-bridge", mqtt='base_topic = "other";',
                                  instance="inst2")
        b = self.start_bridge(extra=zones)
        self.sim.send(update(DEV, T0))
        zone_cfg = "homeassistant/sensor/t2m_inst1/%s_zone/config" % DEV
        wait_for(lambda: self.sub.get(zone_cfg), 10, "the zone sensor")

        def both_complete():
            # Both bridges saw the same device: the other has every entity ours has but the zone
            # sensor (it has no zones). Slow runs (valgrind) publish them over a few seconds.
            snap = retained_snapshot(self.broker.port)
            theirs, ours = self.configs(snap, "t2m_other-bridge__"), self.configs(snap)
            mine = {t.replace("inst1", "inst2").replace("telematics2mqtt", "other-bridge")
                    for t in ours if t != zone_cfg}
            return (theirs, ours) if theirs and mine == set(theirs) else None
        theirs, ours = wait_for(both_complete, 20, "both bridges' configs")
        self.assertIn(zone_cfg, ours)
        self.stop_bridge(b)

        # zones removed from the configuration: exactly the zone sensor goes
        b = self.start_bridge()
        wait_for(lambda: zone_cfg not in retained_snapshot(self.broker.port), 10,
                 "the zone sensor withdrawn")
        snap = retained_snapshot(self.broker.port)
        self.assertEqual(set(self.configs(snap)), set(ours) - {zone_cfg})
        self.stop_bridge(b)

        # Home Assistant turned off: every config of this bridge goes, the other's stay
        b = self.start_bridge(extra="homeassistant = { enabled = false; };")
        wait_for(lambda: not self.configs(retained_snapshot(self.broker.port)), 10,
                 "every config withdrawn")
        snap = retained_snapshot(self.broker.port)
        self.assertEqual(self.configs(snap, "t2m_other-bridge__"), theirs)
        self.assertIn("telematics/inst1/%s/position" % DEV, snap)  # the state stays
        self.assertTrue(other.alive())


class TestUnitsSwitch(Base):
    def test_timestamp_format_switch_keeps_configs_and_state_consistent(self):
        """units.timestamp iso -> unix and a restart: the fix time sensor's config is re-sent
        with a template for numbers, and the retained state is re-rendered in unix seconds at
        once (before: HA logged "Invalid state message" at every update)."""
        b = self.start_bridge()
        self.sim.send(update(DEV, T0))
        fix = "homeassistant/sensor/t2m_inst1/%s_fix_time/config" % DEV
        wait_for(lambda: self.sub.json(fix), 10, "the fix time sensor")
        self.assertEqual(self.sub.json(fix)["value_template"], "{{ value_json.timestamp }}")
        before = set(self.configs(retained_snapshot(self.broker.port)))
        self.stop_bridge(b)
        self.start_bridge(extra='units = { timestamp = "unix"; };')
        pos = "telematics/inst1/%s/position" % DEV
        wait_for(lambda: isinstance((self.sub.json(pos) or {}).get("timestamp"), int), 10,
                 "the state in unix seconds")
        wait_for(lambda: "as_datetime" in (self.sub.json(fix) or {}).get("value_template", ""),
                 10, "the fix time template for numbers")
        snap = retained_snapshot(self.broker.port)
        self.assertEqual(json.loads(snap[pos])["timestamp"], T0)
        self.assertEqual(set(self.configs(snap)), before)  # nothing stale, nothing withdrawn


class TestEventsAndOwnTracks(Base):
    def test_events_on_the_event_entity_topic_and_owntracks_transitions(self):
        self.start_bridge(extra='owntracks = { enabled = true; };\n'
                                'zones = ( { name = "Depot"; latitude = 52.0; longitude = 4.0; '
                                'radius = 150.0; } );')
        self.sim.send(update(DEV, T0, lat=52.0005))
        self.sim.send(update(DEV, T0 + 10, lat=52.01))
        ev_cfg = wait_for(lambda: self.sub.json(
            "homeassistant/event/t2m_inst1/%s_event/config" % DEV), 10, "the event entity")
        topic = ev_cfg["state_topic"]
        wait_for(lambda: self.sub.count(lambda t, p: t == topic) >= 3, 10, "events")
        kinds = [json.loads(p)["event"] for t, p, _ in self.sub.messages if t == topic]
        self.assertEqual(kinds[:3], ["trip_started", "zone_entered", "zone_left"])
        self.assertTrue(set(kinds) <= set(ev_cfg["event_types"]))
        ot = "owntracks/inst1/%s/event" % DEV
        wait_for(lambda: self.sub.count(lambda t, p: t == ot) >= 2, 10, "OwnTracks transitions")
        msgs = [json.loads(p) for t, p, _ in self.sub.messages if t == ot]
        got = [owntracks_transition_consumer(m) for m in msgs]
        self.assertEqual([(g[0], g[1]) for g in got], [("Depot", "enter"), ("Depot", "leave")])
        self.assertEqual(got[0][2], (52.0005, 4.0))
        self.assertEqual((got[0][3], got[0][4]), (5, "c"))
        self.assertEqual(msgs[0]["tst"], T0)
        self.assertNotIn(ot, retained_snapshot(self.broker.port))  # transitions are events

    def test_owntracks_location_keeps_accuracy_after_a_partial_update(self):
        """Home Assistant's OwnTracks integration drops a location without a valid `acc`
        (messages.py, async_valid_accuracy): after an update with neither Accuracy nor
        coordinates, the message still carries the merged position and its accuracy."""
        self.start_bridge(extra='owntracks = { enabled = true; };')
        loc = "owntracks/inst1/%s" % DEV
        self.sim.send(update(DEV, T0, lat=52.1, acc=7.0))
        wait_for(lambda: (self.sub.json(loc) or {}).get("tst") == T0, 10, "the first location")
        self.sim.send({"type": "device_update", "device_token": DEV,
                       "position": {"Speed": 3.0, "Timestamp": T0 + 5}})
        msg = wait_for(lambda: (lambda m: m if m and m.get("tst") == T0 + 5 else None)(
            self.sub.json(loc)), 10, "the location after the speed-only update")
        self.assertEqual((msg["_type"], msg["lat"], msg["lon"], msg["acc"]),
                         ("location", 52.1, 4.0, 7))
        self.assertIsInstance(msg["acc"], int)  # the Recorder and HA expect an integer
        self.assertGreaterEqual(msg["acc"], 0)


if __name__ == "__main__":
    unittest.main()
