"""Real processes on loopback for the integration tests: mosquitto, telematics-sim, the bridge,
and an MQTT subscriber. Every wait is for a condition with a deadline, never a fixed sleep."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import paho.mqtt.client as paho

BIN = os.environ.get("T2M_BIN", os.path.join(os.getcwd(), "telematics2mqtt"))
SIM = os.environ.get("T2M_SIM", os.path.join(os.getcwd(), "tests/sim/telematics-sim"))
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
# Under valgrind or sanitizers everything is slower: scale the deadlines, not the logic.
SLOW = float(os.environ.get("T2M_TEST_SLOW", "1"))
PREFIX = os.environ.get("T2M_WRAPPER", "").split()


def wait_for(cond, timeout=10.0, what="condition", interval=0.02):
    """Polls cond() until it returns a truthy value; fails the test with `what` after timeout."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def outcome_failed(testcase):
    """True when the running test of `testcase` has failed or errored so far (for tearDown to
    print the bridge's log only when it helps)."""
    outcome = getattr(testcase, "_outcome", None)
    if outcome is not None and getattr(outcome, "success", True) is False:
        return True
    res = getattr(outcome, "result", None)
    if res is None:
        return False
    # The result object is the whole run's: only entries for this very test count.
    return any(t is testcase for t, _ in list(res.errors) + list(res.failures))


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def stop_and_check(testcase, bridges, others, secrets=(), tail=5000):
    """The one tearDown of the integration suites: stops the bridges with SIGTERM, then closes
    the other parts (`others`: callables, in order), prints the bridges' logs when the test
    failed, and checks every log for sanitizer reports and the `secrets`, and every exit
    status for a clean stop."""
    failed = outcome_failed(testcase)
    bridges = [b for b in bridges if b is not None]
    rcs = [b.stop() if b.alive() else None for b in bridges]
    outs = [b.output() for b in bridges]
    for close in others:
        close()
    if failed:
        for out in outs:
            sys.stderr.write("---- bridge log ----\n" + out[-tail:])
    for out in outs:
        for bad in SANITIZER_MARKS:
            testcase.assertNotIn(bad, out)
        for secret in secrets:
            testcase.assertNotIn(secret, out, "a secret reached the log")
    for rc in rcs:
        testcase.assertIn(rc, (None, 0), "the bridge exited with %s on SIGTERM" % rc)


class BridgeCase(unittest.TestCase):
    """One mosquitto, one simulator (--rate 0, accepting `token`), a subscriber to everything and
    the bridges a test starts (append them to self.bridges); stop_and_check at the end, with the
    token as a secret that no log may contain."""
    token = "bridge-case-token-0123456789"

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.broker = Broker(self.tmp).start()
        self.sim = Sim(self.tmp, "--rate", "0", "--token", self.token).start()
        self.sub = Subscriber(self.broker.port)
        self.bridges = []

    def tearDown(self):
        stop_and_check(self, self.bridges,
                       (self.sub.close, self.sim.stop, self.broker.stop, self.tmpdir.cleanup),
                       secrets=(self.token,))


def http_get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path, or (None, None) when nothing answers."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, None


def metrics(port):
    """The bridge's /metrics as {"name{labels}": value}; {} when it does not answer."""
    code, body = http_get(port, "/metrics")
    if code != 200:
        return {}
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A private mosquitto on a free loopback port; stop() / start() keep the port."""

    def __init__(self, tmp, port=None, extra=""):
        self.tmp = tmp
        self.port = port or free_port()
        self.extra = extra
        self.proc = None
        self.conf = os.path.join(tmp, "mosquitto-%d.conf" % self.port)
        self.log = os.path.join(tmp, "mosquitto-%d.log" % self.port)
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\nuser root\n"
                    "persistence false\n%s\n" % (self.port, extra))

    def start(self):
        out = open(self.log, "a")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL)
        out.close()
        wait_for(self._accepts, 10, "mosquitto to accept connections")
        return self

    def _accepts(self):
        if self.proc.poll() is not None:
            raise AssertionError("mosquitto exited: " + open(self.log).read()[-2000:])
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    @property
    def url(self):
        return "tcp://127.0.0.1:%d" % self.port


class Sim:
    """telematics-sim on a free port; args are its command-line switches."""

    def __init__(self, tmp, *args, port=0):
        self.tmp = tmp
        self.args = list(args)
        self.port = port
        self.proc = None
        self.errlog = os.path.join(tmp, "sim-%d.log" % id(self))

    def start(self):
        err = open(self.errlog, "a")
        self.proc = subprocess.Popen([SIM, "--port", str(self.port)] + self.args,
                                     stdout=subprocess.PIPE, stderr=err,
                                     stdin=subprocess.DEVNULL, text=True)
        err.close()
        line = self.proc.stdout.readline()
        m = re.search(r"listening on .*:(\d+)", line)
        if not m:
            raise AssertionError("sim did not start: %r %s" % (line, open(self.errlog).read()))
        self.port = int(m.group(1))
        return self

    def stop(self, kill=False):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.proc.wait(10)
        if self.proc:
            self.proc.stdout.close()
        self.proc = None

    @property
    def url(self):
        return "ws://127.0.0.1:%d/realtime/api/v1/ws/realtime" % self.port

    def control(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d/control/%s" % (self.port, path),
                                    timeout=5) as r:
            return r.read().decode()

    def stats(self):
        return json.loads(self.control("stats"))

    def send(self, obj):
        text = obj if isinstance(obj, str) else json.dumps(obj)
        return self.control("send?json=" + urllib.parse.quote(text))


class Bridge:
    """The daemon under test, with a config file written from `conf` (libconfig text)."""

    def __init__(self, tmp, conf, env=None, args=()):
        self.tmp = tmp
        self.conf_path = os.path.join(tmp, "bridge-%d.conf" % id(self))
        with open(self.conf_path, "w") as f:
            f.write(conf)
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("T2M_") and k not in ("T2M_BIN", "T2M_SIM", "T2M_TEST_SLOW",
                                                  "T2M_WRAPPER"):
                del self.env[k]
        self.env.update(env or {})
        self.args = list(args)
        self.log = os.path.join(tmp, "bridge-%d.log" % id(self))
        self.proc = None

    def start(self):
        out = open(self.log, "a")
        self.proc = subprocess.Popen(PREFIX + [BIN, "-c", self.conf_path] + self.args,
                                     stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                     env=self.env)
        out.close()
        return self

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout * SLOW)
        self.proc = None
        return rc

    def signal(self, sig):
        self.proc.send_signal(sig)

    def output(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class Subscriber:
    """Records every message on `topics` (default everything): the latest per topic, all in order."""

    def __init__(self, port, topics=("#",), client_id=None):
        self.lock = threading.Lock()
        self.latest = {}
        self.retained = {}
        self.messages = []
        self.client = paho.Client(client_id=client_id or "t2m-test-%d" % id(self),
                                  protocol=paho.MQTTv311)
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc: (
            [c.subscribe(t, 1) for t in topics], self.connected.set())
        self.client.connect("127.0.0.1", port, 30)
        self.client.loop_start()
        wait_for(self.connected.is_set, 10, "subscriber to connect")

    def _on_message(self, client, userdata, msg):
        with self.lock:
            payload = msg.payload.decode("utf-8", "replace")
            self.latest[msg.topic] = payload
            if msg.retain:
                self.retained[msg.topic] = payload
            self.messages.append((msg.topic, payload, bool(msg.retain)))

    def get(self, topic):
        with self.lock:
            return self.latest.get(topic)

    def json(self, topic):
        v = self.get(topic)
        return json.loads(v) if v is not None else None

    def topics(self, prefix=""):
        with self.lock:
            return [t for t in self.latest if t.startswith(prefix)]

    def count(self, pred=lambda t, p: True):
        with self.lock:
            return sum(1 for t, p, r in self.messages if pred(t, p))

    def clear(self):
        with self.lock:
            self.latest.clear()
            self.retained.clear()
            self.messages.clear()

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def retained_snapshot(port, prefix="#", settle_topic=None, timeout=10, qos=1):
    """A fresh client's view of the retained messages under prefix: subscribe, then wait until a
    marker message we publish ourselves comes back (everything retained arrives before it)."""
    sub = Subscriber(port, topics=(prefix, "t2m-test/marker"))
    marker = "m%d" % time.monotonic_ns()
    sub.client.publish("t2m-test/marker", marker, qos=qos)
    wait_for(lambda: sub.get("t2m-test/marker") == marker, timeout, "retained snapshot")
    with sub.lock:
        snap = dict(sub.retained)
    sub.close()
    return snap


def bridge_conf(sim_url, broker_url, instance="inst1", token="secret-token", extra="",
                mqtt_extra="", units="", instances=None, http="", discovery=None, http_extra=""):
    """A minimal config for the tests; `extra` goes at the top level. `discovery`: the Home
    Assistant discovery form, "device" (the default) or "entity" (0.x's, which the suites written
    for it check topic by topic)."""
    if instances is None:
        instances = '( { id = "%s"; access_token = "%s"; } )' % (instance, token)
    if discovery and "homeassistant" not in extra:
        extra += '\nhomeassistant = { discovery = "%s"; };' % discovery
    return """
upstream = { url = "%s"; backoff_min = 0.05; backoff_max = 0.5; };
instances = %s;
mqtt = { url = "%s"; %s };
units = { %s };
http = { listen = "%s"; %s };
log = { level = "debug"; };
%s
""" % (sim_url, instances, broker_url, mqtt_extra, units, http, http_extra, extra)
