"""SPEC 8 (issue 12, item 3): every limit an MQTT 5 broker announces in CONNACK is honoured, by
every backend. mosquitto configured with max_packet_size, max_inflight_messages (Receive
Maximum), max_qos and retain_available; the bridge streams into it; nothing oversize is sent,
refused messages are counted, nothing loops, and the log holds one line per condition."""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import (Bridge, Broker, Sim, Subscriber, bridge_conf, free_port,  # noqa: E402
                     retained_snapshot, wait_for)

LONG = "L" * 250  # a device token whose state is over the broker's packet size


class Base(unittest.TestCase):
    client = "lws"
    broker_extra = ""

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.broker = Broker(self.tmp, extra=self.broker_extra).start()
        self.sim = Sim(self.tmp, "--rate", "0", "--token", "tok").start()
        self.sub = Subscriber(self.broker.port)
        self.http_port = free_port()
        self.bridge = None

    def tearDown(self):
        harness.stop_and_check(self, [self.bridge],
                               (self.sub.close, self.sim.stop, self.broker.stop, self.tmpdir.cleanup))

    def start(self, protocol=5):
        conf = bridge_conf(self.sim.url, self.broker.url, token="tok",
                           http="127.0.0.1:%d" % self.http_port,
                           mqtt_extra='client = "%s"; protocol = %d;' % (self.client, protocol),
                           extra="homeassistant = { enabled = false; };")
        self.bridge = Bridge(self.tmp, conf).start()
        wait_for(lambda: self.sim.stats()["authenticated_active"] >= 1, 15, "authenticated")

    def send(self, dev, ts, lat=52.0):
        self.sim.send({"type": "device_update", "device_token": dev, "track_token": "T",
                       "position": {"Latitude": lat, "Longitude": 4.0, "Speed": 5.0,
                                    "Accuracy": 3.0, "Timestamp": ts}})

    def metric(self, name):
        return harness.metrics(self.http_port).get(name, 0)

    def connects(self):
        return self.bridge.output().count("mqtt: connected to 127.0.0.1")


class PacketSizeAndWindow(Base):
    broker_extra = "max_packet_size 600\nmax_inflight_messages 2\n"

    def test_oversize_dropped_counted_once_window_kept(self):
        self.start()
        wait_for(lambda: "broker limits: packet size 600, receive maximum 2" in
                 self.bridge.output(), 10, "the limits read from CONNACK")
        for i in range(20):
            self.send(LONG, 1700000000 + i)
            self.send("dev%d" % (i % 5), 1700000000 + i, lat=52.0 + i / 1000)
        # the small ones all arrive (through a window of 2), the long one never
        wait_for(lambda: all((self.sub.json("telematics/inst1/dev%d/position" % k) or {})
                             .get("latitude") == 52.0 + (15 + k) / 1000 for k in range(5)), 20,
                 "every small update")
        wait_for(lambda: self.metric('t2m_updates_dropped_total{reason="broker_too_large"}') >= 1,
                 10, "the oversize messages counted")
        # its state never went out (its trip, short enough, may have)
        self.assertIsNone(self.sub.get("telematics/inst1/%s/position" % LONG))
        out = self.bridge.output()
        self.assertEqual(out.count("over the broker's Maximum Packet Size dropped"), 1)
        self.assertEqual(self.connects(), 1, "a reconnect: something broke a limit")
        self.assertEqual(self.metric("t2m_mqtt_connected"), 1)


class QosAndRetain(Base):
    broker_extra = "max_qos 0\nretain_available false\n"

    def test_qos_lowered_and_retain_dropped(self):
        self.start()
        wait_for(lambda: "QoS 0, retain no" in self.bridge.output(), 15, "the limits")
        # the retained QoS 1 will was refused once (0x9A / 0x9B) and sent without, at once
        for i in range(10):
            self.send("dev%d" % (i % 3), 1700000000 + i)
        wait_for(lambda: all(self.sub.get("telematics/inst1/dev%d/position" % k)
                             for k in range(3)), 10, "positions")
        # accepted, not retained: a fresh subscriber sees no position (QoS 0: the broker's max)
        snap = retained_snapshot(self.broker.port, qos=0)
        self.assertEqual([t for t in snap if t.endswith("/position")], [])
        self.assertEqual(self.connects(), 1)
        self.assertLessEqual(self.bridge.output().count("the broker refused the connection"), 2)


class PacketSizeAndWindowPaho(PacketSizeAndWindow):
    client = "paho"


class QosAndRetainPaho(QosAndRetain):
    client = "paho"


class Refused(Base):
    """A PUBACK with an error reason code (0x87 not authorized, from an ACL) frees its slot and
    is counted: publishing goes on (Paho's used to hold the slot for ever)."""

    def setUp(self):
        self.acl_dir = tempfile.mkdtemp()
        acl = os.path.join(self.acl_dir, "acl")
        with open(acl, "w") as f:
            # every bridge topic but one device's position
            f.write("topic readwrite #\ntopic deny telematics/inst1/denied/position\n")
        self.broker_extra = "acl_file %s\n" % acl
        super().setUp()

    def tearDown(self):
        super().tearDown()
        for n in os.listdir(self.acl_dir):
            os.unlink(os.path.join(self.acl_dir, n))
        os.rmdir(self.acl_dir)

    def run_client(self, client):
        self.client = client
        self.start()
        for i in range(150):  # more than the window of 100
            self.send("denied", 1700000000 + i)
        self.send("allowed", 1700000200)
        wait_for(lambda: self.sub.get("telematics/inst1/allowed/position"), 20,
                 "the next device's position (the window was not held)")
        wait_for(lambda: self.metric('t2m_updates_dropped_total{reason="broker_refused"}') >= 1,
                 10, "refusals counted")
        self.assertLessEqual(self.bridge.output().count("the broker refused"), 1)
        self.assertEqual(self.connects(), 1)

    def test_mosquitto_backend_mqtt5_is_a_config_error(self):
        """Issue 19, item 1: libmosquitto (every release up to 2.0.20) aborts the process on an
        MQTT 5 packet with an unknown property, so the libmosquitto client never speaks MQTT 5:
        the configuration is refused with the reason, before anything starts."""
        conf = bridge_conf(self.sim.url, self.broker.url, token="tok",
                           http="127.0.0.1:%d" % self.http_port,
                           mqtt_extra='client = "mosquitto"; protocol = 5;')
        path = os.path.join(self.tmp, "m5.conf")
        with open(path, "w") as f:
            f.write(conf)
        r = subprocess.run([harness.BIN, "-c", path, "--check-config"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("cannot speak MQTT 5 safely", r.stderr)
        self.assertIn('use mqtt.client = "lws"', r.stderr)

    def test_paho_backend(self):
        self.run_client("paho")

    def test_lws_backend(self):
        self.run_client("lws")


if __name__ == "__main__":
    unittest.main()
