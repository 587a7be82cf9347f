"""SPEC v3 2.1 and 8: a step of the wall clock (NTP on a board without a battery clock, a VM
resumed) neither removes devices, ends trips nor holds positions back. The bridge runs under
Debian's libfaketime with its wall clock read from a file this test rewrites (its monotonic
clock untouched): +1 h with state.expire_after = 600, -1 h with mqtt.min_interval = 1. Both
failed before: the device was removed a second after the step, the throttled positions were
held for an hour."""

import json
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import Bridge, bridge_conf, free_port, wait_for  # noqa: E402

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
TOKEN = "clock-test-token-0123456789"
DEV = "clock-dev"
T0 = 1700000000
POS = "telematics/inst1/%s/position" % DEV
EVENT = "telematics/inst1/%s/event" % DEV


class Base(harness.BridgeCase):
    token = TOKEN

    def start_bridge(self, extra="", mqtt=""):
        self.assertTrue(os.path.exists(LIBFAKETIME), "Debian's libfaketime is not installed")
        self.clock = os.path.join(self.tmp, "faketime")
        self.step("+0s")
        self.http = free_port()
        env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": self.clock,
               "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
               # an ASan build wants its runtime first of all libraries; libfaketime
               # preloaded before it is harmless (it only wraps the clock calls)
               "ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                      "verify_asan_link_order=0"]))}
        conf = bridge_conf(self.sim.url, self.broker.url, token=TOKEN, extra=extra,
                           mqtt_extra=mqtt, http="127.0.0.1:%d" % self.http,
                           units='timestamp = "unix";')
        b = Bridge(self.tmp, conf, env=env).start()
        self.bridges.append(b)
        wait_for(lambda: "read back" in b.output(), 15, "the read-back")
        return b

    def step(self, offset):
        with open(self.clock + ".tmp", "w") as f:
            f.write(offset + "\n")
        os.replace(self.clock + ".tmp", self.clock)

    def send(self, ts, lat):
        self.sim.send({"type": "device_update", "device_token": DEV, "track_token": "T",
                       "position": {"Latitude": lat, "Longitude": 4.0, "Timestamp": ts}})

    def events(self):
        return [json.loads(p)["event"] for t, p, _ in self.sub.messages if t == EVENT]


class TestWallClockStep(Base):
    def test_forward_step_removes_nothing(self):
        b = self.start_bridge(extra="state = { expire_after = 600; };")
        self.send(T0, 52.0)
        wait_for(lambda: self.sub.get(POS), 10, "the position")
        self.step("+3600s")
        # the expiry scan runs every second: it sees the step, and must not remove the device
        wait_for(lambda: "the wall clock stepped by +3600" in b.output(), 15, "the step noticed")
        self.assertNotIn("device_removed", self.events())
        self.assertEqual(harness.metrics(self.http).get("t2m_devices"), 1)
        self.send(T0 + 1, 52.1)
        wait_for(lambda: (self.sub.json(POS) or {}).get("latitude") == 52.1, 10, "the next one")
        self.assertNotIn("device_removed", self.events())

    def test_backward_step_holds_nothing_back(self):
        b = self.start_bridge(mqtt="min_interval = 1.0;")
        self.send(T0, 52.0)
        wait_for(lambda: self.sub.get(POS), 10, "the first position")
        self.send(T0 + 1, 52.001)  # held until the window ends
        self.step("-3600s")
        for i in range(2, 6):
            self.send(T0 + i, 52.0 + i / 1000)
        # the window ends a second after it opened, whatever the wall clock did
        wait_for(lambda: (self.sub.json(POS) or {}).get("latitude") == 52.005, 15,
                 "the latest position")
        self.assertIn("the wall clock stepped by -3600", b.output())


class TestUntrustedTimes(harness.BridgeCase):
    """SPEC v3 2.1: a time far ahead never blocks a device - neither a forged retained position
    stamped 2100 read back at start-up, nor an update stamped a day ahead within a run."""

    def start(self):
        self.http = free_port()
        conf = bridge_conf(self.sim.url, self.broker.url, token=self.token,
                           http="127.0.0.1:%d" % self.http, units='timestamp = "unix";')
        b = Bridge(self.tmp, conf).start()
        self.bridges.append(b)
        wait_for(lambda: "read back" in b.output(), 15, "the read-back")
        wait_for(lambda: self.sim.stats()["authenticated_active"] >= 1, 15, "authenticated")
        return b

    def real(self, lat):
        now = int(time.time()) + 2  # the device's next fix, a moment after the one before
        self.sim.send({"type": "device_update", "device_token": DEV, "track_token": "T",
                       "position": {"Latitude": lat, "Longitude": 4.0, "Timestamp": now}})
        wait_for(lambda: (self.sub.json(POS) or {}).get("latitude") == lat, 10,
                 "the real position %s" % lat)

    def test_poisoned_readback(self):
        forged = {"instance_id": "inst1", "device_token": DEV, "latitude": 9.0, "longitude": 9.0,
                  "timestamp": 4102444800, "last_seen": 4102444800}
        self.sub.client.publish(POS, json.dumps(forged), qos=1, retain=True)
        wait_for(lambda: (self.sub.json(POS) or {}).get("latitude") == 9.0, 10, "the forged one")
        b = self.start()
        wait_for(lambda: "max_clock_skew" in b.output(), 10, "the forged time reported")
        self.real(52.5)  # not dropped as stale: the retained state now holds it
        self.assertLess(self.sub.json(POS)["timestamp"], 4102444800)

    def test_update_a_day_ahead(self):
        b = self.start()
        ahead = int(time.time()) + 86400
        self.sim.send({"type": "device_update", "device_token": DEV, "track_token": "T",
                       "position": {"Latitude": 51.0, "Longitude": 4.0, "Timestamp": ahead}})
        p = wait_for(lambda: (lambda j: j if j and j.get("latitude") == 51.0 else None)(
            self.sub.json(POS)), 10, "the update merged")
        self.assertLess(p["timestamp"], ahead - 3600)  # merged as of its arrival
        self.real(51.5)
        self.assertGreaterEqual(harness.metrics(self.http).get("t2m_fields_rejected_total", 0), 1)
        self.assertIn("ahead of this clock", b.output())


class TestJitter(harness.BridgeCase):
    """SPEC v3 8: three processes against a dead broker retry on schedules of their own (the
    unseeded rand() gave all three the same delays, so a sharded fleet reconnected together)."""

    def test_three_processes_do_not_retry_in_lockstep(self):
        dead = free_port()
        for i in range(3):
            conf = bridge_conf(self.sim.url, "tcp://127.0.0.1:%d" % dead, token=self.token,
                               mqtt_extra='client_id = "jitter-%d";' % i)
            self.bridges.append(Bridge(self.tmp, conf).start())
        delays = re.compile(r"retrying in ([0-9.]+) s")

        def schedules():
            s = [delays.findall(b.output())[:3] for b in self.bridges]
            return s if all(len(x) == 3 for x in s) else None
        s = wait_for(schedules, 30, "three retries of each process")
        # the first delay is backoff_min for all; the next ones are drawn at random
        self.assertEqual(len({tuple(x[1:]) for x in s}), 3, s)


if __name__ == "__main__":
    unittest.main()
