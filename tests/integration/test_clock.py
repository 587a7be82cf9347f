"""SPEC v3 2.1 and 8: a step of the wall clock (NTP on a board without a battery clock, a VM
resumed) neither removes devices, ends trips nor holds positions back. The bridge runs under
Debian's libfaketime with its wall clock read from a file this test rewrites (its monotonic
clock untouched): +1 h with state.expire_after = 600, -1 h with mqtt.min_interval = 1. Both
failed before: the device was removed a second after the step, the throttled positions were
held for an hour."""

import json
import os
import sys
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


if __name__ == "__main__":
    unittest.main()
