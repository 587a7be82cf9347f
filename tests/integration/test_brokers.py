"""Issue 19: brokers that misbehave, and operators who make mistakes. Each test names the item of
the issue it proves and failed before the fix. Real processes on loopback: mosquitto (also two
bridges sharing one client id), the simulator, the bridge, and a scripted MQTT peer
(mute_broker.ScriptBroker) that breaks the protocol at a chosen point."""

import os
import re
import struct
import sys
import tempfile
import unittest

import paho.mqtt.client as paho

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import (Bridge, Broker, Sim, Subscriber, bridge_conf, free_port,  # noqa: E402
                     retained_snapshot, wait_for)
from mute_broker import ScriptBroker  # noqa: E402

TOKEN = "brokers-secret-token-0123456789"


def mqtt5_disconnect(reason):
    """A server DISCONNECT with a reason code and an empty property list."""
    return bytes([0xE0, 0x02, reason, 0x00])


def connects(out):
    """How many connections the bridge made (the backends' "connected to HOST:PORT (..." line)."""
    return len(re.findall(r"mqtt: connected to \S+ \(", out))


class Base(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.bridges = []
        self.closers = []
        self.sim = Sim(self.tmp, "--rate", "0", "--token", TOKEN).start()

    def tearDown(self):
        harness.stop_and_check(self, self.bridges,
                               self.closers + [self.sim.stop, self.tmpdir.cleanup],
                               secrets=(TOKEN,), tail=8000)

    def bridge(self, broker_url, client, protocol=4, instance="inst1", extra="", mqtt=""):
        http = free_port()
        conf = bridge_conf(self.sim.url, broker_url, instance=instance, token=TOKEN,
                           http="127.0.0.1:%d" % http, extra=extra,
                           mqtt_extra='client = "%s"; protocol = %d; keepalive = 10; %s' % (
                               client, protocol, mqtt))
        n = self.sim.stats()["authenticated"]
        b = Bridge(self.tmp, conf).start()
        b.http_port = http
        self.bridges.append(b)
        # updates sent before the bridge is subscribed upstream would go nowhere (valgrind: slow)
        wait_for(lambda: self.sim.stats()["authenticated"] > n, 15, "authenticated upstream")
        return b

    def script_broker(self, cls):
        broker = cls()
        self.closers.insert(0, broker.stop)
        return broker

    @staticmethod
    def metric(b, name):
        return harness.metrics(b.http_port).get(name, 0)

    def send(self, dev, ts, lat=52.0):
        self.sim.send({"type": "device_update", "device_token": dev, "track_token": "T-" + dev,
                       "position": {"Latitude": lat, "Longitude": 4.0, "Speed": 5.0,
                                    "Accuracy": 3.0, "Timestamp": ts}})


class DropAfterConnack(ScriptBroker):
    """Accepts every connection, then ends it at once: garbage (lws, libmosquitto), a close."""
    how = "close"

    def after_connack(self, c, n, version):
        if self.how == "garbage":
            c.sendall(b"\xff\xff\xff\xff\xff\xff")
            return True
        if self.how == "disconnect":
            c.sendall(mqtt5_disconnect(0x9C))  # use another server
        return False


class TestBackoffAfterConnack(Base):
    """Item 3: the MQTT backoff restarts only after a connection that stayed up (30 s), as the
    upstream side's does: a broker that accepts and then drops every connection got a reconnect
    a second for ever (the attempt counter was reset at CONNACK), each re-running the read-back.
    The log names each retry's number: it must grow."""

    def run_case(self, client, how, protocol=4):
        broker = self.script_broker(DropAfterConnack)
        broker.how = how
        b = self.bridge(broker.url, client, protocol)
        wait_for(lambda: "(retry 4)" in b.output(), 40, "the fourth retry in a row")
        self.assertNotIn("(retry 1)", b.output().split("(retry 2)", 1)[1])
        self.assertTrue(b.alive())

    def test_lws_garbage(self):
        self.run_case("lws", "garbage")

    def test_lws_disconnect_mqtt5(self):
        self.run_case("lws", "disconnect", 5)

    def test_mosquitto_close(self):
        self.run_case("mosquitto", "close")


class DisconnectMidStream(ScriptBroker):
    """Connection 1: acknowledges nothing, and after 30 publishes sends DISCONNECT 0x8B (server
    shutting down) and closes. Later connections: a normal broker that acknowledges all."""

    def acks(self, n):
        return n > 1

    def after_publish(self, c, n, version, count):
        if n == 1 and count == 30:
            if version == 5:
                c.sendall(mqtt5_disconnect(0x8B))
            return False
        return True


class TestDisconnectNotLost(Base):
    """Item 2: Paho with MQTT 5 lost data silently after a server DISCONNECT: it reconnected on
    its own and never told the bridge (no setDisconnected callback), so nothing was re-sent, and
    the messages in flight were counted as refused by the broker."""

    def run_case(self, client, protocol):
        broker = self.script_broker(DisconnectMidStream)
        b = self.bridge(broker.url, client, protocol, extra="homeassistant = { enabled = false; };")
        wait_for(lambda: broker.connections >= 1, 10, "the first connection")
        for i in range(40):
            self.send("dev%d" % (i % 10), 1700000000 + i, lat=52.0 + i / 1000)
        wait_for(lambda: broker.connections >= 2, 30, "the reconnect")
        want = ["telematics/inst1/dev%d/position" % k for k in range(10)]
        # The bridge learnt of the end: online again, every device's latest position re-sent.
        wait_for(lambda: all(t in broker.publishes_on(2) for t in want), 30,
                 "every device's position on the new connection")
        self.assertIn("telematics/bridge/state", broker.publishes_on(2))
        self.assertIn("connection lost", b.output())
        self.assertEqual(self.metric(b, 't2m_updates_dropped_total{reason="broker_refused"}'), 0)
        wait_for(lambda: self.metric(b, "t2m_mqtt_connected") == 1, 10, "connected")

    def test_paho_mqtt5(self):
        self.run_case("paho", 5)

    def test_paho_mqtt311(self):
        self.run_case("paho", 4)

    def test_lws_mqtt5(self):
        self.run_case("lws", 5)


class ReceiveMaximumZero(ScriptBroker):
    def connack(self, n, version):
        return b"\x20\x06\x00\x00\x03\x21\x00\x00"  # MQTT 5 CONNACK, Receive Maximum 0


class TestReceiveMaximumZero(Base):
    """Item 2: Paho took a CONNACK with Receive Maximum 0 (a protocol error) as connected and then
    published nothing. Now: not connected, retried with the backoff."""

    def run_case(self, client, why):
        broker = self.script_broker(ReceiveMaximumZero)
        b = self.bridge(broker.url, client, 5)
        wait_for(lambda: broker.connections >= 3, 30, "three attempts")
        self.assertIn(why, b.output())
        self.assertEqual(self.metric(b, "t2m_mqtt_connected"), 0)
        self.assertNotIn("mqtt: connected to", b.output())

    def test_paho(self):
        self.run_case("paho", "Receive Maximum 0")

    def test_lws(self):
        self.run_case("lws", "malformed packet from the broker")


class TestMaximumPacketSize(Base):
    """Item 6 (and SPEC 8): with MQTT 5 every backend that speaks it announces the bridge's
    Maximum Packet Size (256 KiB) in CONNECT, so the broker never sends it a 100 MB request
    (which took the bridge to ~320 MB before its own 64 KiB check); with MQTT 3.1.1 the lws
    transport skips what is larger, counted, without a reconnect. libmosquitto and Paho on
    3.1.1 read whatever the broker sends: the README says what the broker must bound."""

    @staticmethod
    def connect_max_packet_size(body):
        """The Maximum Packet Size property of an MQTT 5 CONNECT body, or None."""
        nl = struct.unpack(">H", body[:2])[0]
        pos = 2 + nl + 1 + 1 + 2  # name, level, flags, keep alive
        length, shift = 0, 0
        while True:
            b = body[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        props = body[pos:pos + length]
        i = 0
        while i < len(props):
            if props[i] == 0x27:
                return struct.unpack(">I", props[i + 1:i + 5])[0]
            i += 1  # the bridge sends no other property: a scan is enough
        return None

    def test_announced_in_connect(self):
        for client in ("lws", "paho"):
            broker = self.script_broker(ScriptBroker)
            self.bridge(broker.url, client, 5, instance="i-" + client)
            wait_for(lambda: broker.connects, 10, "a CONNECT")
            self.assertEqual(broker.versions[0], 5)
            self.assertEqual(self.connect_max_packet_size(broker.connects[0]), 262144, client)

    def big_request(self, broker, size):
        pub = paho.Client(client_id="t2m-big-%d" % size, protocol=paho.MQTTv311)
        pub.connect("127.0.0.1", broker.port, 30)
        pub.loop_start()
        pub.publish("telematics/bridge/request/health_check", b"{" + b" " * size + b"}",
                    qos=1).wait_for_publish(30)
        pub.publish("telematics/bridge/request/health_check", b'{"transaction":"after"}',
                    qos=1).wait_for_publish(10)
        pub.loop_stop()
        pub.disconnect()

    def test_large_request_real_broker(self):
        broker = Broker(self.tmp).start()
        self.closers.insert(0, broker.stop)
        sub = Subscriber(broker.port, topics=("telematics/bridge/response/#",))
        self.closers.insert(0, sub.close)
        cases = [("lws", 5), ("paho", 5), ("lws", 4)]
        bridges = []
        for client, protocol in cases:
            b = self.bridge(broker.url, client, protocol, instance="i-%s-%d" % (client, protocol),
                            extra="homeassistant = { enabled = false; };",
                            mqtt='client_id = "t2m-%s-%d";' % (client, protocol))
            wait_for(lambda: self.metric(b, "t2m_mqtt_connected") == 1, 15, "connected")
            wait_for(lambda: "read back" in b.output(), 15, "the read-back")
            bridges.append(b)
        self.big_request(broker, 20 * 1024 * 1024)
        # every bridge answers the small request after the big one (three responses)
        wait_for(lambda: sub.count(lambda t, p: '"after"' in p) >= 3, 30, "three responses")
        # SPEC 2.3, every request gets one response: the 3.1.1 bridge skipped the big one unread
        # and still answers it with an error (the MQTT 5 ones never got it from the broker)
        self.assertEqual(sub.count(lambda t, p: "request larger than" in p), 1)
        for (client, protocol), b in zip(cases, bridges):
            out = b.output()
            self.assertEqual(connects(out), 1, "%s %d reconnected" % (
                client, protocol))
            skipped = self.metric(b, "t2m_mqtt_inbound_skipped_total")
            # MQTT 5: the broker never sent it; 3.1.1: lws skipped it, once
            self.assertEqual(skipped, 1 if protocol == 4 else 0, "%s %d" % (client, protocol))

    def test_oversized_retained_config_lws(self):
        """Issue 20 found it: a 5 MB retained config of another integration under
        homeassistant/ made the lws transport reconnect ten times in ten seconds (it ended the
        connection at its 4 MiB bound). Now it is skipped and counted; the read-back ends on its
        marker and Home Assistant configs are published."""
        broker = Broker(self.tmp).start()
        self.closers.insert(0, broker.stop)
        pub = paho.Client(client_id="t2m-other-integration", protocol=paho.MQTTv311)
        pub.connect("127.0.0.1", broker.port, 30)
        pub.loop_start()
        pub.publish("homeassistant/sensor/other/huge/config", b"x" * (5 * 1024 * 1024), qos=1,
                    retain=True).wait_for_publish(30)
        pub.loop_stop()
        pub.disconnect()
        b = self.bridge(broker.url, "lws", 4)
        wait_for(lambda: "read back" in b.output(), 20, "the read-back")
        self.send("dev1", 1700000000)
        snap = lambda: retained_snapshot(broker.port, "homeassistant/#")  # noqa: E731
        wait_for(lambda: any("__inst1__dev1" in t for t in snap()), 20, "the device's configs")
        self.assertEqual(connects(b.output()), 1)
        self.assertEqual(self.metric(b, "t2m_mqtt_inbound_skipped_total"), 1)
        self.assertNotIn("read-back incomplete", b.output())


class TestRefusedSubscription(Base):
    """Item 9: a subscription the broker refuses (SUBACK 0x80 / 0x87, from an ACL) is logged by
    every backend (libmosquitto and Paho said nothing, so requests silently never arrived); Paho
    no longer prints its banner at warn level at every start."""

    def test_every_backend(self):
        # (mosquitto 2.0.11's ACL file grants every SUBSCRIBE and filters at delivery: a
        # scripted broker refuses them)
        class Refusing(ScriptBroker):
            def suback_code(self, version):
                return 0x87 if version == 5 else 0x80

        bridges = []
        for client, protocol in (("mosquitto", 4), ("paho", 5), ("paho", 4), ("lws", 5)):
            broker = self.script_broker(Refusing)
            bridges.append(self.bridge(broker.url, client, protocol,
                                       instance="i-%s-%d" % (client, protocol)))
        for b in bridges:
            wait_for(lambda: "the broker refused a subscription" in b.output(), 15,
                     "the refusal logged")
        self.assertNotIn(" warn  paho:", bridges[1].output())
        self.assertNotIn(" warn  paho:", bridges[2].output())


class Hostile(ScriptBroker):
    """A broker that answers CONNECT with `connack_bytes` and then sends `after` at once."""
    connack_v5 = b"\x20\x03\x00\x00\x00"
    after = b""

    def connack(self, n, version):
        return self.connack_v5 if version == 5 else b"\x20\x02\x00\x00"

    def after_connack(self, c, n, version):
        if self.after:
            c.sendall(self.after)
        return not getattr(self, "close_after", False)


class TestLwsTransportHostile(Base):
    """Issue 20, item 3: the bridge's own transport (the default) against a hostile broker peer.
    Each case: the bridge survives, says why, and either keeps its connection (what it can
    ignore) or reconnects with the backoff (what breaks the protocol)."""

    def start(self, broker, protocol=5, mqtt="", extra="homeassistant = { enabled = false; };"):
        return self.bridge(broker.url, "lws", protocol, mqtt=mqtt, extra=extra)

    def hostile(self, **kw):
        cls = type("H", (Hostile,), kw)
        return self.script_broker(cls)

    def test_malformed_connack_properties(self):
        # a duplicate Maximum QoS, then an unknown property id 0x7f: malformed, never connected
        for props in (b"\x04\x24\x00\x24\x01", b"\x02\x7f\x00"):
            broker = self.hostile(connack_v5=bytes([0x20, 2 + len(props), 0, 0]) + props)
            b = self.start(broker)
            wait_for(lambda: broker.connections >= 2, 20, "a retry")
            self.assertIn("malformed packet from the broker", b.output())
            self.assertEqual(connects(b.output()), 0)
            self.assertTrue(b.alive())

    def test_maximal_and_truncated_varints(self):
        # a PUBLISH announcing 268,435,455 bytes: skipped as it comes, never a reconnect
        broker = self.hostile(after=b"\x30\xff\xff\xff\x7f" + b"\x00" * 100000)
        b = self.start(broker)
        wait_for(lambda: self.metric(b, "t2m_mqtt_inbound_skipped_total") == 1, 10, "skipped")
        self.assertEqual(broker.connections, 1)
        # an over-long encoding (MQTT-1.5.5-1) and a truncated one followed by a close
        for after in (b"\xd0\x80\x00", b"\x30\xff"):
            broker = self.hostile(after=after, close_after=True)
            b = self.start(broker)
            wait_for(lambda: broker.connections >= 2, 20, "a retry")
            self.assertTrue(b.alive())

    def test_unknown_and_repeated_pubacks_and_pingresp_flood(self):
        # PUBACKs for ids never used, the same id twice, and 20,000 PINGRESPs: all ignored
        junk = b"\x40\x02\x12\x34" * 50 + b"\x40\x02\x00\x01" * 3 + b"\xd0\x00" * 20000
        broker = self.hostile(after=junk)
        b = self.start(broker)
        wait_for(lambda: "read back" in b.output(), 15, "the read-back")
        for i in range(20):
            self.send("dev%d" % (i % 4), 1700000000 + i)
        want = ["telematics/inst1/dev%d/position" % k for k in range(4)]
        wait_for(lambda: all(t in broker.publishes_on(1) for t in want), 15, "positions")
        wait_for(lambda: self.metric(b, "t2m_messages_published_total") >= 20, 15, "acks")
        self.assertEqual(broker.connections, 1)
        self.assertEqual(broker.reused_ids, [])

    def test_receive_maximum_one(self):
        broker = self.hostile(connack_v5=b"\x20\x06\x00\x00\x03\x21\x00\x01")
        b = self.start(broker)
        wait_for(lambda: "receive maximum 1" in b.output(), 10, "the limit read")
        for i in range(60):
            self.send("dev%d" % (i % 6), 1700000000 + i)
        want = ["telematics/inst1/dev%d/position" % k for k in range(6)]
        wait_for(lambda: all(t in broker.publishes_on(1) for t in want), 20, "positions")
        self.assertEqual(broker.max_qos1_per_read, 1)  # never two in flight
        self.assertEqual(broker.connections, 1)

    def test_tiny_maximum_packet_size(self):
        # Maximum Packet Size 160: the states do not fit; dropped, counted, no reconnect
        broker = self.hostile(connack_v5=b"\x20\x08\x00\x00\x05\x27\x00\x00\x00\xa0")
        b = self.start(broker)
        wait_for(lambda: "packet size 160" in b.output(), 10, "the limit read")
        for i in range(5):
            self.send("dev%d" % i, 1700000000 + i)
        wait_for(lambda: self.metric(
            b, 't2m_updates_dropped_total{reason="broker_too_large"}') >= 5, 15, "drops counted")
        self.assertEqual(broker.connections, 1)
        self.assertLessEqual(b.output().count("over the broker's Maximum Packet Size"), 1)


class TestSameClientId(Base):
    """Item 4: two bridges with the same mqtt.client_id (a copy-paste) took the connection from
    each other every ~2 s, and each read-back withdrew the other's Home Assistant configs (their
    unique_ids share the client id): 130 clears in 20 s. Now one error line with the client id,
    the backoff grows, and no config is withdrawn."""

    def run_case(self, client, protocol):
        broker = Broker(self.tmp).start()
        self.closers.insert(0, broker.stop)
        a = self.bridge(broker.url, client, protocol, instance="instA",
                        mqtt='client_id = "t2m-copy";')
        wait_for(lambda: "read back" in a.output(), 15, "bridge A's read-back")
        self.send("devA", 1700000000)
        snap = lambda: retained_snapshot(broker.port, "homeassistant/#")  # noqa: E731
        wait_for(lambda: any("__instA__devA" in t for t in snap()), 15, "A's device configs")
        b = self.bridge(broker.url, client, protocol, instance="instB",
                        mqtt='client_id = "t2m-copy";')
        for x in (a, b):
            wait_for(lambda: re.search(r' error mqtt: .*client id "t2m-copy"', x.output()), 90,
                     "the take-over said")
        # Both go on reading back after reconnects; neither withdraws anything.
        readbacks = [a.output().count("read back"), b.output().count("read back")]
        for x, n in zip((a, b), readbacks):
            wait_for(lambda: x.output().count("read back") > n, 90, "another read-back")
        for x in (a, b):
            self.assertNotIn("withdrew", x.output())
            self.assertEqual(len(re.findall(r" error mqtt: ", x.output())), 1, "one error line")
        configs = snap()
        self.assertTrue(any("__instA__devA" in t for t in configs))

    def test_lws_mqtt5(self):
        self.run_case("lws", 5)

    def test_mosquitto_mqtt311(self):
        self.run_case("mosquitto", 4)


if __name__ == "__main__":
    unittest.main()
