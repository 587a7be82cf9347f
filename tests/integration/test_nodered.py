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
WORLDMAP_FLOWS = os.path.join(HERE, "..", "..", "deploy", "node-red", "worldmap.json")
WORLDMAP = "node-red-contrib-web-worldmap@5"
SETTINGS = os.path.join(HERE, "nodered", "settings.js")
CACHE = os.environ.get("T2M_NODERED_CACHE",
                       os.path.join(os.path.expanduser("~"), ".cache", "t2m-nodered"))
PACKAGE = "node-red@3"
INSTALL_TIMEOUT = 300


def red_js():
    return os.path.join(CACHE, "node_modules", "node-red", "red.js")


def install_node_red(package=PACKAGE, check=red_js):
    """Installs a package into CACHE once (a stamp file marks a finished install); returns
    check() (the path it needs) or raises with npm's output."""
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            raise AssertionError("%s is not installed: test_nodered needs Node.js (>= 14) and npm "
                                 "on PATH, and the npm registry reachable once" % tool)
    stamp = os.path.join(CACHE, "t2m-installed-" + package)
    if os.path.exists(stamp) and os.path.exists(check()):
        return check()
    os.makedirs(CACHE, exist_ok=True)
    # optional dependencies (bcrypt) and install scripts would download prebuilt binaries from
    # outside the npm registry; Node-RED falls back to bcryptjs without them
    cmd = ["npm", "install", "--prefix", CACHE, "--no-audit", "--no-fund",
           "--no-update-notifier", "--omit=optional", "--ignore-scripts", package]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           stdin=subprocess.DEVNULL, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("npm install %s timed out after %d s:\n%s" %
                             (PACKAGE, INSTALL_TIMEOUT, e.output or ""))
    if r.returncode != 0 or not os.path.exists(check()):
        raise AssertionError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stdout))
    with open(stamp, "w") as f:
        f.write(r.stdout)
    return check()


def worldmap_dir():
    return os.path.join(CACHE, "node_modules", "node-red-contrib-web-worldmap")


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


class NodeRedBase(unittest.TestCase):
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

    def start_node_red(self, flows, modules=()):
        user_dir = os.path.join(self.tmp, "nr")
        os.makedirs(os.path.join(user_dir, "node_modules"))
        # Node-RED loads node packages from <userDir>/node_modules
        for m in modules:
            os.symlink(m, os.path.join(user_dir, "node_modules", os.path.basename(m)))
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



class TestNodeRed(NodeRedBase):
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


def make_worldmap_flows(broker_port, to_map, events):
    """deploy/node-red/worldmap.json with the broker on our port, a file node on every wire
    into the worldmap node (what the map receives) and one behind the trip event list."""
    with open(WORLDMAP_FLOWS) as f:
        flows = json.load(f)
    by_id = {n["id"]: n for n in flows}
    types = [n["type"] for n in flows]
    assert types.count("worldmap") == 1 and types.count("mqtt-broker") == 1, types
    world = [n for n in flows if n["type"] == "worldmap"][0]
    tab = world["z"]
    for n in flows:
        if n["type"] == "mqtt-broker":
            n["broker"], n["port"] = "127.0.0.1", str(broker_port)
    flows.append(file_node("t2mtest000000011", tab, to_map, 320))
    flows.append(file_node("t2mtest000000012", tab, events, 380))
    for n in flows:
        for out in n.get("wires", []):
            if world["id"] in out:
                out.append("t2mtest000000011")
    events_fn = [n for n in flows if n["type"] == "function" and n["name"] == "last trip events"]
    assert len(events_fn) == 1
    by_id[events_fn[0]["id"]]["wires"][0].append("t2mtest000000012")
    return flows


class TestWorldMap(NodeRedBase):
    """Issue 13: the second flow draws every device on node-red-contrib-web-worldmap (installed
    from npm), labelled with its alias, its trip as a track, greyed while the bridge is offline,
    and lists trip events."""

    def test_world_map_markers_tracks_offline_and_events(self):
        wm = install_node_red(WORLDMAP, worldmap_dir)
        to_map = os.path.join(self.tmp, "to_map.jsonl")
        events = os.path.join(self.tmp, "events.jsonl")
        self.start_node_red(make_worldmap_flows(self.broker.port, to_map, events), [wm])
        self.sim.control("set?trip_seconds=2&park_seconds=1")  # trips start and end all along
        toks = self.sim.stats()["device_tokens"]
        conf = bridge_conf(self.sim.url, self.broker.url,
                           extra='devices = ( { token = "%s"; name = "Van 12"; } );' % toks[0])
        self.bridge = Bridge(self.tmp, conf).start()

        def markers():
            if self.nr.poll() is not None:
                raise AssertionError("Node-RED exited:\n" + self.log()[-4000:])
            return [m for m in read_lines(to_map) if "lat" in m]

        try:
            wait_for(lambda: len({m["name"] for m in markers()}) >= 3, 60, "markers of 3 devices")
            wait_for(lambda: any("line" in m and len(m["line"]) >= 2 for m in read_lines(to_map)),
                     30, "a trip track")
            # The first list may hold only a trip_ended (its start came before Node-RED
            # subscribed: events are not retained); trips start every few seconds.
            wait_for(lambda: any(" trip_started" in line
                                 for line in (read_lines(events) or [[]])[-1]), 30,
                     "a trip_started in the trip event list")
        except AssertionError:
            sys.stderr.write("---- node-red log ----\n" + self.log()[-4000:])
            raise
        log = self.log()
        self.assertNotIn("Waiting for missing types", log)  # the worldmap node loaded
        self.assertIn("worldmap", log.lower())
        by_name = {}
        for m in markers():
            by_name[m["name"]] = m
            self.assertEqual(m["icon"], "car")
            self.assertIn(m["iconColor"], ("green", "blue"))
        self.assertEqual(by_name[toks[0]]["label"], "Van 12")  # the alias, from the state
        self.assertEqual(by_name[toks[1]]["label"], toks[1])
        track = [m for m in read_lines(to_map) if "line" in m][-1]
        self.assertTrue(all(len(pt) == 2 for pt in track["line"]))
        self.assertTrue(track["name"].endswith(" trip"))
        ev = read_lines(events)[-1]
        self.assertTrue(any(" trip_started" in line for line in ev), ev)
        # the bridge goes: its will (offline) greys every marker
        n = len(read_lines(to_map))
        self.assertEqual(self.bridge.stop(), 0)
        wait_for(lambda: {m["name"] for m in read_lines(to_map)[n:]
                          if m.get("iconColor") == "grey"} >= set(by_name), 20, "grey markers")


if __name__ == "__main__":
    unittest.main()
