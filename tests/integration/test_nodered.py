"""Node-RED end to end (issue 4): the shipped deploy/node-red/flows.json running in a real
Node-RED (installed from the npm registry into a cache folder), fed by mosquitto, the simulator
and the bridge. Two `file` nodes added to the flow write what the mqtt in node receives and
what the marker function makes of it."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import (Bridge, Broker, Sim, bridge_conf, free_port, wait_for)  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FLOWS = os.path.join(HERE, "..", "..", "deploy", "node-red", "flows.json")
SETTINGS = os.path.join(HERE, "nodered", "settings.js")
CACHE = os.environ.get("T2M_NODERED_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache", "t2m-nodered"))
PACKAGE = "node-red@3"
INSTALL_TIMEOUT = 300
STAMP = os.path.join(CACHE, "t2m-installed-" + PACKAGE)


def red_js():
    return os.path.join(CACHE, "node_modules", "node-red", "red.js")


def install_node_red():
    """Installs PACKAGE into CACHE once (a stamp file marks a finished install); returns the
    path of red.js or raises with npm's output."""
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            raise AssertionError("%s is not installed: test_nodered needs Node.js (>= 14) and npm "
                                 "on PATH, and the npm registry reachable once" % tool)
    if os.path.exists(STAMP) and os.path.exists(red_js()):
        return red_js()
    os.makedirs(CACHE, exist_ok=True)
    # optional dependencies (bcrypt) and install scripts would download prebuilt binaries from
    # outside the npm registry; Node-RED falls back to bcryptjs without them
    cmd = ["npm", "install", "--prefix", CACHE, "--no-audit", "--no-fund",
           "--no-update-notifier", "--omit=optional", "--ignore-scripts", PACKAGE]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           stdin=subprocess.DEVNULL, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("npm install %s timed out after %d s:\n%s" %
                             (PACKAGE, INSTALL_TIMEOUT, e.output or ""))
    if r.returncode != 0 or not os.path.exists(red_js()):
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stdout))
    with open(STAMP, "w") as f:
        f.write(r.stdout)
    return red_js()


def file_node(node_id, tab, path, y):
    return {"id": node_id, "type": "file", "z": tab, "name": os.path.basename(path),
            "filename": path, "filenameType": "str", "appendNewline": True, "createDir": True,
            "overwriteFile": "false", "encoding": "none", "x": 580, "y": y, "wires": [[]]}


def make_flows(broker_port, received, markers):
    """The shipped flow with the broker on our port and a file node behind the mqtt in node
    and the function node."""
    with open(FLOWS) as f:
        flows = json.load(f)
    by_type = {}
    for n in flows:
        by_type.setdefault(n["type"], []).append(n)
    for t in ("tab", "mqtt-broker", "mqtt in", "function", "debug"):
        assert len(by_type.get(t, [])) == 1, "flows.json should hold one %s node" % t
    broker, mqtt_in, func = by_type["mqtt-broker"][0], by_type["mqtt in"][0], by_type["function"][0]
    tab = by_type["tab"][0]["id"]
    broker["broker"], broker["port"] = "127.0.0.1", str(broker_port)
    flows.append(file_node("t2mtest000000001", tab, received, 200))
    flows.append(file_node("t2mtest000000002", tab, markers, 260))
    mqtt_in["wires"][0].append("t2mtest000000001")
    func["wires"][0].append("t2mtest000000002")
    return flows


def read_lines(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []  # not written yet, or a line half written


class TestNodeRed(unittest.TestCase):
    def setUp(self):
        self.red = install_node_red()
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.broker = Broker(self.tmp).start()
        self.sim = Sim(self.tmp, "--instance", "inst1", "--token", "secret-token",
                       "--devices", "3", "--rate", "15").start()
        self.bridge = None
        self.nr = None
        self.nr_log = os.path.join(self.tmp, "node-red.log")

    def tearDown(self):
        if self.nr and self.nr.poll() is None:
            self.nr.send_signal(signal.SIGTERM)
            try:
                self.nr.wait(15)
            except subprocess.TimeoutExpired:
                self.nr.kill()
                self.nr.wait()
        rc = self.bridge.stop() if self.bridge and self.bridge.alive() else 0
        out = self.bridge.output() if self.bridge else ""
        self.sim.stop()
        self.broker.stop()
        self.tmpdir.cleanup()
        self.assertEqual(rc, 0, "bridge exit status %r:\n%s" % (rc, out[-4000:]))

    def start_node_red(self, flows):
        user_dir = os.path.join(self.tmp, "nr")
        os.makedirs(user_dir)
        flows_path = os.path.join(user_dir, "flows.json")
        with open(flows_path, "w") as f:
            json.dump(flows, f, indent=2)
        env = dict(os.environ, T2M_NR_PORT=str(free_port()), T2M_NR_FLOWS=flows_path,
                   NODE_RED_ENABLE_PROJECTS="false", NO_UPDATE_NOTIFIER="1")
        out = open(self.nr_log, "w")
        self.nr = subprocess.Popen(["node", self.red, "--userDir", user_dir, "--settings",
                                    SETTINGS], stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                   env=env)
        out.close()

    def log(self):
        with open(self.nr_log, errors="replace") as f:
            return f.read()

    def test_positions_arrive_through_node_red(self):
        received = os.path.join(self.tmp, "received.jsonl")
        markers = os.path.join(self.tmp, "markers.jsonl")
        self.start_node_red(make_flows(self.broker.port, received, markers))
        self.bridge = Bridge(self.tmp, bridge_conf(self.sim.url, self.broker.url)).start()

        def three_devices():
            if self.nr.poll() is not None:
                raise AssertionError("Node-RED exited:\n" + self.log()[-4000:])
            return len({p.get("device_token") for p in read_lines(received)}) >= 3

        try:
            wait_for(three_devices, 60, "positions of 3 devices written by Node-RED")
            wait_for(lambda: len({m["name"] for m in read_lines(markers)}) >= 3, 20,
                     "markers of 3 devices")
        except AssertionError:
            sys.stderr.write("---- node-red log ----\n" + self.log()[-4000:] +
                             "\n---- bridge log ----\n" + self.bridge.output()[-3000:])
            raise
        log = self.log()
        self.assertIn("Connected to broker", log)
        self.assertNotIn("Waiting for missing types", log)

        positions = read_lines(received)
        for p in positions:
            self.assertEqual(p["instance_id"], "inst1")
            self.assertEqual(p["speed_unit"], "km/h")
            self.assertIsInstance(p["latitude"], float)
        # the function node's marker of each device matches what the bridge published
        tokens = {p["device_token"] for p in positions}
        by_point = {(p["device_token"], p["latitude"], p["longitude"]): p for p in positions}
        for m in read_lines(markers):
            self.assertIn(m["name"], tokens)
            self.assertEqual(m["icon"], "car")
            p = by_point[(m["name"], m["lat"], m["lon"])]
            self.assertAlmostEqual(m["speed"], p["speed"] / 3.6, delta=0.01)
            self.assertEqual(m["bearing"], p["heading"])
            self.assertEqual(m["accuracy"], p["gps_accuracy"])


if __name__ == "__main__":
    unittest.main()
