"""Interoperability with a second broker (issue 5): RabbitMQ 3.10's MQTT plugin (Debian's
rabbitmq-server), a private node on loopback ports. Retained positions reach a late subscriber, the
will arrives when the bridge is killed, positions go out at QoS 1 and are acknowledged; both MQTT
libraries.

RabbitMQ 3.10 differs from mosquitto in ways a user of a RabbitMQ cluster must know (README,
"Scaling"); the tests below pin each one down:
- MQTT 3.1.1 only: a CONNECT with protocol level 5 is refused (mqtt.protocol must stay 4);
- retained messages are delivered only to subscriptions of the exact topic, never through wildcards;
- topics are AMQP routing keys inside: a "." in an MQTT topic comes back as "/".
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

import paho.mqtt.client as paho

sys.path.insert(0, os.path.dirname(__file__))
from harness import (SLOW, Bridge, Sim, Subscriber, bridge_conf, free_port,  # noqa: E402
                     wait_for)
from test_ops import http_get, parse_metrics  # noqa: E402

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
EPMD = shutil.which("epmd") or "/usr/bin/epmd"
SAMPLE_POS = {"Latitude": 40.7128, "Longitude": -74.0060, "Speed": 7.85, "Accuracy": 5.0,
              "Timestamp": 1640995200, "Heading": 180.0}


class RabbitMQ:
    """A private RabbitMQ node with the MQTT plugin: every port on 127.0.0.1 and free, every file
    in tmp, its own epmd (a child of ours, so nothing outlives the test)."""

    def __init__(self, tmp, name="rabbitmq", epmd_port=None, home=None):
        """A cluster's nodes share one epmd (epmd_port: the first node's, which runs it) and one
        Erlang cookie (home: the directory its .erlang.cookie is in)."""
        for tool in (RABBITMQ_SERVER, RABBITMQCTL, EPMD):
            if not os.access(tool, os.X_OK):
                raise AssertionError("%s not found: apt-get install rabbitmq-server "
                                     "(scripts/deps.sh lists it)" % tool)
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.port, self.amqp_port, self.dist_port = (free_port() for _ in range(3))
        self.own_epmd = epmd_port is None
        self.epmd_port = epmd_port or free_port()
        self.nodename = "t2m-%s-%d@localhost" % (name, self.port)
        self.log = os.path.join(self.dir, "node.log")
        conf = os.path.join(self.dir, "rabbitmq.conf")
        with open(conf, "w") as f:
            f.write("listeners.tcp.default = 127.0.0.1:%d\n"
                    "mqtt.listeners.tcp.1 = 127.0.0.1:%d\n"
                    "mqtt.allow_anonymous = true\n"
                    "loopback_users = none\n" % (self.amqp_port, self.port))
        plugins = os.path.join(self.dir, "enabled_plugins")
        with open(plugins, "w") as f:
            f.write("[rabbitmq_mqtt].\n")
        self.env = dict(os.environ)
        self.env.update({
            "HOME": home or self.dir,  # the Erlang cookie goes here, not into root's home
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            # without this the distribution listener binds 0.0.0.0
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CONFIG_FILE": conf,
            "RABBITMQ_ENABLED_PLUGINS_FILE": plugins,
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": os.path.join(self.dir, "plugins"),
            "RABBITMQ_GENERATED_CONFIG_DIR": os.path.join(self.dir, "generated"),
            "RABBITMQ_SCHEMA_DIR": os.path.join(self.dir, "schema"),
            "RABBITMQ_PID_FILE": os.path.join(self.dir, "pid"),
            "RABBITMQ_LOGS": "-",
        })
        self.epmd = self.proc = None

    def start(self):
        self.launch()
        return self.ready()

    def launch(self):
        """Starts the node without waiting for it: a cluster's nodes boot side by side."""
        out = open(self.log, "a")
        if self.own_epmd:
            # epmd in the foreground: started by the node it would daemonize and linger
            self.epmd = subprocess.Popen([EPMD, "-port", str(self.epmd_port)], stdout=out,
                                         stderr=out, stdin=subprocess.DEVNULL, env=self.env)
            wait_for(lambda: self._accepts(self.epmd_port, self.epmd), 10, "epmd")
        # its own session: stop() signals the whole process group (sh, beam, erl_child_setup)
        self.proc = subprocess.Popen([RABBITMQ_SERVER], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL, env=self.env, cwd=self.dir,
                                     start_new_session=True)
        out.close()
        return self

    def ready(self):
        # RabbitMQ takes 10-20 s to boot here
        wait_for(lambda: self._accepts(self.port, self.proc), 90, "RabbitMQ's MQTT listener")
        wait_for(self._connack, 30, "RabbitMQ to accept an MQTT session")
        return self

    def ctl(self, *args):
        """rabbitmqctl against this node; its output, or AssertionError with it."""
        r = subprocess.run([RABBITMQCTL, "-n", self.nodename] + list(args), env=self.env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError("rabbitmqctl %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                                   r.stdout, r.stderr))
        return r.stdout

    def kill(self):
        """SIGKILL to the node (beam and its children): a crash, not a shutdown."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def _accepts(self, port, proc):
        if proc.poll() is not None:
            raise AssertionError("exited early: " + self.tail())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def _connack(self):
        c = paho.Client(client_id="t2m-probe", protocol=paho.MQTTv311)
        try:
            return c.connect("127.0.0.1", self.port, 10) == 0 and c.loop(2) == 0 and \
                c.is_connected()
        except OSError:
            return False
        finally:
            c.disconnect()

    def tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-3000:]
        except OSError as e:
            return "(no log: %s)\n" % e

    def stop(self):
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # the node shuts down cleanly on TERM
                self.proc.wait(60)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            self.proc = None
        if self.epmd:
            self.epmd.terminate()
            self.epmd.wait(10)
            self.epmd = None


class Recorder:
    """A subscriber that keeps QoS and retain flags, for exact-topic subscriptions."""

    def __init__(self, port, topics, client_id):
        self.lock = threading.Lock()
        self.msgs = []
        self.client = paho.Client(client_id=client_id, protocol=paho.MQTTv311)
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda c, u, mid, granted: self.subscribed.set()
        self.client.on_connect = lambda c, u, f, rc: c.subscribe([(t, 1) for t in topics])
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        wait_for(self.subscribed.is_set, 10, "subscription at RabbitMQ")

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.msgs.append((msg.topic, msg.payload.decode("utf-8", "replace"), msg.qos,
                              bool(msg.retain)))

    def find(self, topic):
        with self.lock:
            return [m for m in self.msgs if m[0] == topic]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class TestRabbitMQ(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmpdir = tempfile.TemporaryDirectory()
        cls.rmq = RabbitMQ(cls.tmpdir.name)
        try:
            cls.rmq.start()
        except BaseException:
            sys.stderr.write("---- RabbitMQ log ----\n" + cls.rmq.tail())
            cls.rmq.stop()
            cls.tmpdir.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.rmq.stop()
        cls.tmpdir.cleanup()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=self.tmpdir.name)
        self.cleanups = []
        self.bridge = None

    def tearDown(self):
        for f in reversed(self.cleanups):
            f()
        if self.bridge:
            if self.bridge.alive():
                self.bridge.stop()
            res = getattr(self, "_outcome", None)
            if res and hasattr(res, "result") and (res.result.errors or res.result.failures):
                sys.stderr.write("---- bridge log ----\n" + self.bridge.output()[-6000:])

    def later(self, f):
        self.cleanups.append(f)

    def start_bridge(self, client, base, protocol=4, http_port=None):
        self.sim = Sim(self.tmp, "--instance", "inst1", "--token", "secret-token", "--devices", "3",
                       "--rate", "20").start()
        self.later(self.sim.stop)
        self.http_port = http_port or free_port()
        mqtt = 'client = "%s"; base_topic = "%s"; client_id = "t2m-%s"; protocol = %d;' % (
            client, base, base, protocol)
        conf = bridge_conf(self.sim.url, "tcp://127.0.0.1:%d" % self.rmq.port, mqtt_extra=mqtt,
                           http="127.0.0.1:%d" % self.http_port)
        self.bridge = Bridge(self.tmp, conf).start()
        return self.bridge

    def metrics(self):
        status, body = http_get("http://127.0.0.1:%d/metrics" % self.http_port)
        self.assertEqual(status, 200, body)
        return parse_metrics(body)

    def run_backend(self, client):
        base = "rmq_" + client
        live = Subscriber(self.rmq.port, topics=(base + "/#",), client_id="live-" + client)
        self.later(live.close)
        self.start_bridge(client, base)
        positions = lambda: [t for t in live.topics(base + "/inst1/") if t.endswith("/position")]
        wait_for(lambda: len(positions()) >= 3, 20, "positions of 3 devices through RabbitMQ")
        wait_for(lambda: live.get(base + "/bridge/state") == "online", 10, "online")
        state_topic = base + "/bridge/state"
        self.assertIn("(%s, MQTT 3.1.1)" % client, self.bridge.output())

        # QoS 1: the broker acknowledges every position (published counts PUBACKs), nothing waits
        m = wait_for(lambda: (lambda m: m["t2m_messages_published_total"] >= 6 and m)(
            self.metrics()), 10, "acknowledged publishes")
        self.assertEqual(m["t2m_mqtt_connected"], 1)
        wait_for(lambda: self.metrics()["t2m_offline_queue_depth"] == 0, 10, "nothing unacked")

        # a late subscriber gets the retained positions (exact topics: RabbitMQ 3.10 does not hand
        # retained messages to wildcard subscriptions) at QoS 1
        topics = positions()[:3]
        late = Recorder(self.rmq.port, topics + [state_topic], "late-" + client)
        self.later(late.close)
        for t in topics:
            got = wait_for(lambda: late.find(t), 10, "retained " + t)
            _, payload, qos, retained = got[0]
            self.assertTrue(retained, t)
            self.assertEqual(qos, 1, t)
            p = json.loads(payload)
            self.assertEqual(t, "%s/inst1/%s/position" % (base, p["device_token"]))
            self.assertIn("latitude", p)
        online = wait_for(lambda: late.find(state_topic), 10, "retained online")
        self.assertEqual(online[0][1:], ("online", 1, True))

        # the will: kill -9, RabbitMQ publishes "offline" (retained) for the bridge
        self.bridge.proc.send_signal(signal.SIGKILL)
        self.bridge.proc.wait(10 * SLOW)
        self.bridge.proc = None
        wait_for(lambda: live.get(state_topic) == "offline", 15, "the will (offline)")
        after = Recorder(self.rmq.port, [state_topic], "after-" + client)
        self.later(after.close)
        got = wait_for(lambda: after.find(state_topic), 10, "retained offline after the will")
        self.assertEqual(got[0][1:3], ("offline", 1))
        self.assertTrue(got[0][3])

    def test_mosquitto_backend(self):
        self.run_backend("mosquitto")

    def test_paho_backend(self):
        self.run_backend("paho")

    def test_lws_backend(self):
        self.run_backend("lws")

    def test_retained_not_through_wildcards(self):
        """Documents RabbitMQ 3.10: retained messages only on exact-topic subscriptions."""
        pub = paho.Client(client_id="wild-pub", protocol=paho.MQTTv311)
        pub.connect("127.0.0.1", self.rmq.port, 30)
        pub.loop_start()
        self.later(pub.loop_stop)
        pub.publish("wild/a/position", "x", qos=1, retain=True).wait_for_publish(10)
        exact = Recorder(self.rmq.port, ["wild/a/position", "wild/marker"], "wild-exact")
        self.later(exact.close)
        wild = Recorder(self.rmq.port, ["wild/#"], "wild-wild")
        self.later(wild.close)
        wait_for(lambda: exact.find("wild/a/position"), 10, "retained on the exact topic")
        # a live message after both subscriptions: once it arrives, any retained one would have
        pub.publish("wild/marker", "m", qos=1).wait_for_publish(10)
        wait_for(lambda: wild.find("wild/marker") and exact.find("wild/marker"), 10, "marker")
        self.assertEqual(wild.find("wild/a/position"), [])

    def test_dot_in_a_topic_comes_back_as_slash(self):
        """Documents RabbitMQ 3.10: '.' separates AMQP routing-key words, so a device token with a
        dot (kept as is: '.' is an unreserved topic byte) is seen under a different topic."""
        live = Subscriber(self.rmq.port, topics=("rmq_dot/#",), client_id="live-dot")
        self.later(live.close)
        self.start_bridge("mosquitto", "rmq_dot")
        wait_for(lambda: "inst1: subscribed" in self.bridge.output(), 10, "subscribed")
        self.sim.send({"type": "device_update", "device_token": "van.12", "position": SAMPLE_POS})
        got = wait_for(lambda: [t for t in live.topics("rmq_dot/inst1/van") if
                                t.endswith("/position")], 10, "the van.12 position")
        self.assertEqual(got, ["rmq_dot/inst1/van/12/position"])
        self.assertEqual(json.loads(live.get(got[0]))["device_token"], "van.12")

    def test_mqtt5_is_refused(self):
        """Documents RabbitMQ 3.10: no MQTT 5 (it drops the connection at CONNECT); the bridge keeps
        retrying, reports the broker down, and mqtt.protocol = 4 (the default) is the fix."""
        self.start_bridge("lws", "rmq_v5", protocol=5)
        failed = "connecting to 127.0.0.1:%d failed" % self.rmq.port
        wait_for(lambda: self.bridge.output().count(failed) >= 2, 15, "two refused connects")
        self.assertNotIn("mqtt: connected to", self.bridge.output())
        status, body = http_get("http://127.0.0.1:%d/healthz" % self.http_port)
        self.assertEqual(status, 503, body)
        self.assertEqual(self.metrics()["t2m_mqtt_connected"], 0)
        self.assertTrue(self.bridge.alive())

if __name__ == "__main__":
    unittest.main()
