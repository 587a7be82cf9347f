"""SPEC section 9. Fail-over: mqtt.url lists two brokers; the first is killed under the bridge,
which carries on on the second with every device's latest state: two mosquittos (both backends),
and a real two-node RabbitMQ cluster. Sharding: three processes with one configuration of nine instances (and
T2M_SHARD = K/3 each) against mosquitto and telematics-sim, on loopback. Each instance is served
by exactly one process, the processes' own topics and client ids are their shard's, requests are
answered by the shard that owns the instance, and a killed process takes only its own devices'
Home Assistant availability with it."""

import json
import os
import signal
import sys
import tempfile
import unittest

import paho.mqtt.client as paho

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import (SLOW, Bridge, Broker, Sim, Subscriber, free_port, http_get,  # noqa: E402
                     retained_snapshot, wait_for)
from test_rabbitmq import RabbitMQ, Recorder  # noqa: E402

T0 = 1700000000
DEV = "0aace1bd-0376-4ff7-9c9b-4d5b0a6d8d01"
TOKEN = "scale-token-0123456789"
INSTANCES = ["fleet-%d" % i for i in range(9)]
N = 3


def fnv1a32(s):
    h = 2166136261
    for c in s.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


def shard_of(instance):
    return fnv1a32(instance) % N


class TestSharding(harness.BridgeCase):
    token = TOKEN

    def conf(self):
        inst = ",\n".join('  { id = "%s"; access_token = "%s"; }' % (i, TOKEN) for i in INSTANCES)
        return """
upstream = { url = "%s"; backoff_min = 0.05; backoff_max = 0.5; };
instances = (
%s
);
mqtt = { url = "%s"; client_id = "t2m"; };
http = { listen = ""; };
homeassistant = { discovery = "entity"; };
""" % (self.sim.url, inst, self.broker.url)

    def test_nine_instances_three_processes(self):
        # every shard gets some instances with these ids (the test needs all three to matter)
        self.assertEqual({shard_of(i) for i in INSTANCES}, set(range(N)))
        conf = self.conf()
        for k in range(N):
            # shard 1 by its StatefulSet pod name, as Kubernetes passes "$(POD_NAME)/3"
            shard = "telematics2mqtt-1/3" if k == 1 else "%d/%d" % (k, N)
            self.bridges.append(Bridge(self.tmp, conf, env={"T2M_SHARD": shard}).start())
        wait_for(lambda: self.sim.stats()["authenticated_active"] >= len(INSTANCES), 30,
                 "nine authenticated connections")
        self.assertEqual(self.sim.stats()["authenticated_active"], len(INSTANCES))
        for k in range(N):
            wait_for(lambda: self.sub.get("telematics/bridge/%d/state" % k) == "online", 15,
                     "shard %d online" % k)
        self.assertIsNone(self.sub.get("telematics/bridge/state"))  # no unsharded topic

        self.sim.send({"type": "device_update", "device_token": DEV, "track_token": "T1",
                       "position": {"Latitude": 52.0, "Longitude": 4.0, "Speed": 10.0,
                                    "Accuracy": 5.0, "Timestamp": T0, "Heading": 90.0}})
        for i in INSTANCES:
            wait_for(lambda: self.sub.get("telematics/%s/%s/position" % (i, DEV)), 15,
                     "the position of %s" % i)

        # Each process reports exactly the devices of its own instances.
        owners = {}
        for k in range(N):
            req = "telematics/bridge/%d/request/devices" % k
            self.sub.client.publish(req, json.dumps({"transaction": "t%d" % k}), qos=1)
            resp = wait_for(lambda: self.sub.json("telematics/bridge/%d/response/devices" % k),
                            15, "shard %d's devices" % k)
            self.assertEqual((resp["status"], resp["transaction"]), ("ok", "t%d" % k))
            for d in resp["data"]:
                self.assertNotIn(d["instance_id"], owners, "an instance served twice")
                owners[d["instance_id"]] = k
            info = wait_for(lambda: self.sub.json("telematics/bridge/%d/info" % k), 10,
                            "shard %d's info" % k)
            self.assertEqual(info["config"]["shard"], "%d/%d" % (k, N))
            self.assertEqual(sorted(x["id"] for x in info["instances"]),
                             sorted(i for i in INSTANCES if shard_of(i) == k))
        self.assertEqual(owners, {i: shard_of(i) for i in INSTANCES})

        # A request for an instance another shard owns: refused, not served twice.
        other = next(i for i in INSTANCES if shard_of(i) != 0)
        self.sub.client.publish("telematics/bridge/0/request/device/remove",
                                json.dumps({"instance": other, "device": DEV,
                                            "transaction": "x"}), qos=1)
        resp = wait_for(lambda: self.sub.json("telematics/bridge/0/response/device/remove"), 15,
                        "the refusal")
        self.assertEqual(resp["status"], "error")
        self.assertIn("telematics/%s/%s/position" % (other, DEV),
                      retained_snapshot(self.broker.port, "telematics/#"))

        # Home Assistant: a device's availability is its own process's will; the bridge device
        # of each process is its own (client id t2m-K).
        snap = retained_snapshot(self.broker.port)
        for i in INSTANCES:
            cfg = json.loads(snap["homeassistant/device_tracker/t2m_%s/%s/config" % (i, DEV)])
            topics = [a["topic"] for a in cfg["availability"]]
            self.assertIn("telematics/bridge/%d/state" % shard_of(i), topics)
            self.assertTrue(cfg["unique_id"].startswith("t2m_t2m-%d__" % shard_of(i)))

        # SIGKILL one process: its will marks its shard offline, the others stay online.
        victim = shard_of(INSTANCES[0])
        self.bridges[victim].proc.send_signal(signal.SIGKILL)
        self.bridges[victim].proc.wait(10 * SLOW)
        wait_for(lambda: self.sub.get("telematics/bridge/%d/state" % victim) == "offline",
                 30, "the killed shard's will")
        for k in range(N):
            if k != victim:
                self.assertEqual(self.sub.get("telematics/bridge/%d/state" % k), "online")


class Failover(unittest.TestCase):
    client = "mosquitto"

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.node1 = Broker(self.tmp).start()
        self.node2 = Broker(self.tmp).start()
        self.sim = Sim(self.tmp, "--rate", "0", "--token", TOKEN).start()
        self.sub1 = Subscriber(self.node1.port)
        self.sub2 = Subscriber(self.node2.port)
        self.http_port = free_port()
        self.bridge = None

    def tearDown(self):
        harness.stop_and_check(self, [self.bridge],
                               (self.sub1.close, self.sub2.close, self.sim.stop, self.node1.stop,
                                self.node2.stop, self.tmpdir.cleanup), secrets=(TOKEN,))

    def healthz(self):
        return json.loads(http_get(self.http_port, "/healthz")[1] or "{}")

    def test_fails_over_with_every_latest_state(self):
        conf = """
upstream = { url = "%s"; backoff_min = 0.05; backoff_max = 0.5; };
instances = ( { id = "inst1"; access_token = "%s"; } );
mqtt = { client = "%s"; url = [ "%s", "%s" ]; keepalive = 5; };
homeassistant = { enabled = false; };
http = { listen = "127.0.0.1:%d"; };
""" % (self.sim.url, TOKEN, self.client, self.node1.url, self.node2.url, self.http_port)
        self.bridge = Bridge(self.tmp, conf).start()
        devs = ["%08d-0376-4ff7-9c9b-4d5b0a6d8d01" % i for i in range(3)]

        def send(dev, ts):
            self.sim.send({"type": "device_update", "device_token": dev,
                           "position": {"Latitude": 52.0, "Longitude": 4.0, "Timestamp": ts}})

        def pos(sub, dev):
            return sub.json("telematics/inst1/%s/position" % dev) or {}
        wait_for(lambda: self.sim.stats()["authenticated_active"] >= 1, 15, "authenticated")
        for d in devs:
            send(d, T0)
        for d in devs:
            wait_for(lambda: pos(self.sub1, d).get("timestamp"), 15, "node 1 gets " + d)
        self.assertEqual(self.healthz().get("broker"), "127.0.0.1:%d" % self.node1.port)
        self.assertEqual([t for t in self.sub2.topics() if "/position" in t], [])

        self.node1.stop(kill=True)
        send(devs[0], T0 + 60)  # while the bridge fails over
        for d in devs:  # node 2 gets every device's latest state: re-sent after the fail-over
            wait_for(lambda: pos(self.sub2, d).get("timestamp"), 30 * SLOW, "node 2 gets " + d)
        wait_for(lambda: pos(self.sub2, devs[0]).get("timestamp") == "2023-11-14T22:14:20Z",
                 30 * SLOW, "the update sent during the fail-over")
        self.assertEqual(self.healthz().get("broker"), "127.0.0.1:%d" % self.node2.port)
        self.assertIn('t2m_mqtt_broker_node{node="127.0.0.1:%d"} 1' % self.node2.port,
                      http_get(self.http_port, "/metrics")[1])
        snap = retained_snapshot(self.node2.port, "telematics/#")
        for d in devs:
            self.assertIn("telematics/inst1/%s/position" % d, snap)
        self.assertEqual(snap.get("telematics/bridge/state"), "online")
        self.assertIn("failing over to broker node 2 of 2", self.bridge.output())


class FailoverPaho(Failover):
    client = "paho"


class FailoverLws(Failover):
    client = "lws"


class RabbitMQCluster(unittest.TestCase):
    """Two RabbitMQ 3.10 nodes on loopback joined into one cluster (rabbitmqctl join_cluster), the
    MQTT plugin on both. Two bridges (the libmosquitto and the Paho backend, each with its own base
    topic) stream through node 1, node 1 is killed (SIGKILL), both fail over to node 2. RabbitMQ
    3.10 keeps retained messages per node (checked: node 2 holds none of node 1's), so it is the
    bridges' re-send after the reconnect that makes node 2 complete: a late subscriber there gets
    every device's latest position. One cluster, one kill: both backends side by side."""

    CLIENTS = tuple(os.environ.get("T2M_CLUSTER_CLIENTS", "mosquitto,paho,lws").split(","))

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        home = os.path.join(self.tmp, "home")  # one Erlang cookie for both nodes
        os.makedirs(home)
        cookie = os.path.join(home, ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write("T2M%08X" % fnv1a32(self.tmp))
        os.chmod(cookie, 0o400)
        self.node1 = RabbitMQ(self.tmp, "node1", home=home)
        self.node2 = RabbitMQ(self.tmp, "node2", epmd_port=self.node1.epmd_port, home=home)
        # stopped in reverse: node 1 last, it runs the cluster's epmd
        self.closers = [self.tmpdir.cleanup, self.node1.stop, self.node2.stop]
        self.bridges = []
        try:
            self.node1.launch()
            self.node2.launch()  # both boot side by side
            self.node1.ready()
            self.node2.ready()
            self.node2.ctl("stop_app")
            self.node2.ctl("join_cluster", self.node1.nodename)
            self.node2.ctl("start_app")
            self.node2.ready()
            status = json.loads(self.node2.ctl("cluster_status", "--formatter", "json"))
            self.assertEqual(set(status["running_nodes"]),
                             {self.node1.nodename, self.node2.nodename})
            self.sim = Sim(self.tmp, "--rate", "0", "--token", TOKEN).start()
            self.closers.append(self.sim.stop)
        except BaseException:  # no tearDown after a failed setUp
            for n in (self.node1, self.node2):
                sys.stderr.write("---- %s log ----\n%s" % (n.nodename, n.tail()))
            for close in reversed(self.closers):
                close()
            raise

    def tearDown(self):
        if harness.outcome_failed(self):
            for n in (self.node1, self.node2):
                sys.stderr.write("---- %s log ----\n%s" % (n.nodename, n.tail()))
        harness.stop_and_check(self, self.bridges, reversed(self.closers), secrets=(TOKEN,))

    def subscriber(self, node, topics, name):
        sub = Recorder(node.port, topics, name)
        self.closers.append(sub.close)
        return sub

    def test_fail_over_to_the_second_node(self):
        devs = ["%08d-0376-4ff7-9c9b-4d5b0a6d8d01" % i for i in range(5)]
        # each backend with its own base topic
        topics = {c: ["cl_%s/inst1/%s/position" % (c, d) for d in devs] for c in self.CLIENTS}
        every = [t for c in self.CLIENTS for t in topics[c]]
        # a live subscriber on node 2 sees what the bridges publish through node 1: one cluster
        live2 = self.subscriber(self.node2, ["cl_%s/#" % c for c in self.CLIENTS], "live2")
        ports = {}
        for c in self.CLIENTS:
            ports[c] = free_port()
            conf = """
upstream = { url = "%s"; backoff_min = 0.05; backoff_max = 0.5; };
instances = ( { id = "inst1"; access_token = "%s"; } );
mqtt = { client = "%s"; url = [ "tcp://127.0.0.1:%d", "tcp://127.0.0.1:%d" ]; keepalive = 5;
         base_topic = "cl_%s"; client_id = "t2m-%s"; };
homeassistant = { enabled = false; };
http = { listen = "127.0.0.1:%d"; };
""" % (self.sim.url, TOKEN, c, self.node1.port, self.node2.port, c, c, ports[c])
            self.bridges.append(Bridge(self.tmp, conf).start())

        def healthz(c):
            return json.loads(http_get(ports[c], "/healthz")[1] or "{}")

        def send(dev, ts):
            self.sim.send({"type": "device_update", "device_token": dev,
                           "position": {"Latitude": 52.0, "Longitude": 4.0, "Timestamp": ts}})

        def latest(sub, topic):
            got = sub.find(topic)
            return json.loads(got[-1][1]) if got else {}
        wait_for(lambda: self.sim.stats()["authenticated_active"] >= len(self.CLIENTS), 15,
                 "authenticated")
        for d in devs:
            send(d, T0)
        for t in every:
            wait_for(lambda: latest(live2, t).get("timestamp"), 20, "node 2 relays " + t)
        for c in self.CLIENTS:
            self.assertEqual(healthz(c).get("broker"), "127.0.0.1:%d" % self.node1.port)

        # RabbitMQ 3.10: retained messages stay on the node they were published to. Node 1 has
        # them, node 2 none (a live marker published after the subscriptions bounds the wait).
        marker = "cl_marker"
        late1 = self.subscriber(self.node1, every, "late1")
        late2 = self.subscriber(self.node2, every + [marker], "late2")
        for t in every:
            wait_for(lambda: late1.find(t), 10, "retained %s on node 1" % t)
        pub = paho.Client(client_id="marker", protocol=paho.MQTTv311)
        pub.connect("127.0.0.1", self.node2.port, 30)
        pub.loop_start()
        pub.publish(marker, "m", qos=1).wait_for_publish(10)
        pub.loop_stop()
        pub.disconnect()
        wait_for(lambda: late2.find(marker), 10, "the marker on node 2")
        self.assertEqual([m for m in late2.msgs if m[0] in every], [])

        self.node1.kill()
        send(devs[0], T0 + 60)  # while the bridges fail over
        for c in self.CLIENTS:
            wait_for(lambda: healthz(c).get("broker") == "127.0.0.1:%d" % self.node2.port,
                     30 * SLOW, "the %s bridge on node 2" % c)
            wait_for(lambda: latest(live2, topics[c][0]).get("timestamp") ==
                     "2023-11-14T22:14:20Z", 30 * SLOW, "the update sent during the fail-over")
        # every device's latest position is now retained on node 2: the bridges re-sent them all
        after = self.subscriber(self.node2, every, "after")
        for c in self.CLIENTS:
            for t in topics[c]:
                got = wait_for(lambda: after.find(t), 15, "retained %s on node 2" % t)
                _, payload, qos, retained = got[0]
                self.assertTrue(retained, t)
                self.assertEqual(qos, 1, t)
                want = "2023-11-14T22:14:20Z" if t == topics[c][0] else "2023-11-14T22:13:20Z"
                self.assertEqual(json.loads(payload)["timestamp"], want, t)
            self.assertIn('t2m_mqtt_broker_node{node="127.0.0.1:%d"} 1' % self.node2.port,
                          http_get(ports[c], "/metrics")[1])
        for b in self.bridges:
            self.assertIn("failing over to broker node 2 of 2", b.output())
            self.assertNotIn("home node", b.output())


if __name__ == "__main__":
    unittest.main()
