"""Operations (issue 5): environment-only configuration, /healthz and /metrics over a broker outage,
--healthcheck, exit statuses, JSON and journal logging, and systemd's sd_notify protocol."""

import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import outcome_failed  # noqa: E402
from harness import (BIN, PREFIX, SLOW, Bridge, Broker, Sim, Subscriber, bridge_conf,  # noqa: E402
                     free_port, wait_for)
from refresh_server import RefreshServer, make_jwt  # noqa: E402

# Without -c the bridge reads this file when it exists: the env-only tests must not see one.
DEFAULT_CONF = "/etc/telematics2mqtt/telematics2mqtt.conf"
# Inherited from a service manager, these would change what the bridge logs and notifies.
SERVICE_ENV = ("JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS")
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


class OpsBridge(Bridge):
    """The daemon with a config file (conf given) or with the environment alone (conf None: no
    -c at all); stderr goes to self.log, stdout to self.stdout_log."""

    def __init__(self, tmp, conf=None, env=None, args=()):
        super().__init__(tmp, conf or "", None, args)
        for k in SERVICE_ENV:
            self.env.pop(k, None)
        self.env.update(env or {})
        self.use_file = conf is not None
        self.stdout_log = self.log + ".stdout"

    def command(self, *extra):
        return [BIN] + (["-c", self.conf_path] if self.use_file else []) + list(extra)

    def start(self):
        err = open(self.log, "a")
        out = open(self.stdout_log, "a")
        self.proc = subprocess.Popen(PREFIX + self.command(*self.args), stdout=out, stderr=err,
                                     stdin=subprocess.DEVNULL, env=self.env)
        err.close()
        out.close()
        return self

    def run(self, *extra, timeout=30):
        """Runs a one-shot command (--check-config, --healthcheck, ...) with the same config."""
        return subprocess.run(PREFIX + self.command(*extra), env=self.env, capture_output=True,
                              text=True, timeout=timeout * SLOW, stdin=subprocess.DEVNULL)

    def wait_exit(self, timeout=20):
        rc = self.proc.wait(timeout * SLOW)
        self.proc = None
        return rc


def http_get(url):
    """(status, body) of GET url; a 4xx/5xx answer is a result, not an exception."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return None, ""


def parse_metrics(text):
    """{'name' or 'name{labels}': float} from the Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


class Base(unittest.TestCase):
    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.bridge = None
        self.procs = []

    def tearDown(self):
        if self.bridge and self.bridge.alive():
            self.bridge.stop()
        for p in reversed(self.procs):
            if isinstance(p, Subscriber):
                p.close()
            else:
                p.stop()
        if self.bridge and self._outcome_failed():
            sys.stderr.write("---- bridge log ----\n" + self.bridge.output()[-6000:])
        self.tmpdir.cleanup()

    def _outcome_failed(self):
        return outcome_failed(self)

    def own(self, p):
        self.procs.append(p)
        return p

    def start_world(self, devices=3, rate=30):
        self.broker = self.own(Broker(self.tmp).start())
        self.sim = self.own(Sim(self.tmp, "--instance", "inst1", "--token", "secret-token",
                                "--devices", str(devices), "--rate", str(rate)).start())
        self.sub = self.own(Subscriber(self.broker.port))

    def env_config(self, **over):
        """The T2M_* variables of a complete bridge: no file needed."""
        tokfile = os.path.join(self.tmp, "token")
        with open(tokfile, "w") as f:
            f.write("secret-token\n")
        os.chmod(tokfile, 0o600)
        self.http_port = free_port()
        env = {"T2M_UPSTREAM_URL": self.sim.url, "T2M_INSTANCE_ID": "inst1",
               "T2M_ACCESS_TOKEN_FILE": tokfile, "T2M_MQTT_URL": self.broker.url,
               "T2M_BASE_TOPIC": "ops", "T2M_LOG_LEVEL": "debug",
               "T2M_HTTP_LISTEN": "127.0.0.1:%d" % self.http_port}
        env.update(over)
        return env

    def assert_no_default_config(self):
        self.assertFalse(os.path.exists(DEFAULT_CONF),
                         "%s exists on this machine: an environment-only run would read it. "
                         "Remove it (an installed telematics2mqtt package?) and run again."
                         % DEFAULT_CONF)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def healthz(self, want):
        """(status, body) of /healthz when its status is `want`, else None."""
        r = http_get(self.url("/healthz"))
        return r if r[0] == want else None

    def metrics(self):
        status, body = http_get(self.url("/metrics"))
        self.assertEqual(status, 200, body)
        return parse_metrics(body)

    def positions(self, base="ops"):
        return [t for t in self.sub.topics(base + "/inst1/") if t.endswith("/position")]


class TestEnvironmentOnly(Base):
    """No config file at all: the T2M_* variables alone run a full bridge, with either MQTT library;
    /healthz and /metrics follow a broker outage and --healthcheck reports it."""

    def run_backend(self, client):
        self.assert_no_default_config()
        self.start_world()
        env = self.env_config(T2M_MQTT_CLIENT=client, T2M_UNITS="imperial")
        self.bridge = OpsBridge(self.tmp, None, env)
        check = self.bridge.run("--check-config")
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertIn("environment only", check.stdout)
        self.assertIn('client = "%s"' % client, check.stdout)
        self.assertNotIn("secret-token", check.stdout + check.stderr)
        self.bridge.start()

        wait_for(lambda: len(self.positions()) >= 3, 15, "positions of 3 devices under ops/")
        for t in self.positions():
            p = self.sub.json(t)
            self.assertEqual(p["speed_unit"], "mph")
            self.assertEqual(p["accuracy_unit"], "ft")
        self.assertEqual(self.sub.get("ops/bridge/state"), "online")
        self.assertEqual(self.sim.stats()["last_auth"]["access_token"], "secret-token")
        self.assertIn("(%s, MQTT 3.1.1)" % client, self.bridge.output())  # that library, really

        # healthy: /healthz 200, the gauges and counters move
        status, body = wait_for(lambda: self.healthz(200), 10, "/healthz 200")
        h = json.loads(body)
        self.assertEqual(h["status"], "ok")
        self.assertEqual(h["instances"], {"inst1": "subscribed"})
        m1 = wait_for(lambda: (lambda m: m["t2m_devices"] == 3 and m)(self.metrics()), 10,
                      "t2m_devices 3")
        self.assertEqual(m1["t2m_mqtt_connected"], 1)
        self.assertEqual(m1['t2m_upstream_state{instance="inst1"}'], 2)
        self.assertGreater(m1["t2m_updates_received_total"], 0)
        self.assertGreater(m1["t2m_messages_published_total"], 0)
        grown = ("t2m_updates_received_total", "t2m_messages_published_total")
        wait_for(lambda: (lambda m: all(m[k] > m1[k] for k in grown))(self.metrics()), 10,
                 "counters to grow")
        hc = self.bridge.run("--healthcheck", self.url("/healthz"))
        self.assertEqual(hc.returncode, 0, hc.stdout + hc.stderr)
        self.assertTrue(hc.stdout.startswith("200 "), hc.stdout)
        hc = self.bridge.run("--healthcheck")  # the address from the configuration (the env here)
        self.assertEqual(hc.returncode, 0, hc.stdout + hc.stderr)

        # the broker goes away: 503 with the reason, gauge 0, --healthcheck 1
        self.sub.close()
        self.procs.remove(self.sub)
        self.broker.stop(kill=True)
        status, body = wait_for(lambda: self.healthz(503), 10, "/healthz 503 after the broker died")
        h = json.loads(body)
        self.assertEqual(h["status"], "error")
        self.assertIn("mqtt", h["reason"])
        self.assertEqual(h["mqtt"], "disconnected")
        self.assertEqual(self.metrics()["t2m_mqtt_connected"], 0)
        hc = self.bridge.run("--healthcheck")
        self.assertEqual(hc.returncode, 1, hc.stdout + hc.stderr)
        self.assertTrue(hc.stdout.startswith("503 "), hc.stdout)
        # updates keep coming while the broker is away: they wait in the offline queue
        wait_for(lambda: self.metrics()["t2m_offline_queue_depth"] > 0, 10, "offline queue to fill")

        # back: 200 again, gauge 1, the queue drains
        self.broker.start()
        wait_for(lambda: http_get(self.url("/healthz"))[0] == 200, 20, "/healthz 200 again")
        m = self.metrics()
        self.assertEqual(m["t2m_mqtt_connected"], 1)
        wait_for(lambda: self.metrics()["t2m_offline_queue_depth"] < 10, 10, "the queue to drain")
        self.assertEqual(self.bridge.run("--healthcheck").returncode, 0)

        self.assertEqual(self.bridge.stop(), 0)
        self.assertNotIn("secret-token", self.bridge.output())

    def test_mosquitto_backend(self):
        self.run_backend("mosquitto")

    def test_paho_backend(self):
        self.run_backend("paho")

    def test_lws_backend(self):
        self.run_backend("lws")


class TestTokens(Base):
    """SPEC 6, 7 (issue 22): tokens that renew themselves with the environment alone, as a
    container runs; the access token's expiry in /metrics, B/I/status and Home Assistant; a
    warning when it ends within the hour and nothing can refresh it."""

    def world(self, accepted):
        self.broker = self.own(Broker(self.tmp).start())
        self.sim_tokens = os.path.join(self.tmp, "sim-tokens")
        self.write(self.sim_tokens, accepted)
        self.sim = self.own(Sim(self.tmp, "--instance", "inst1", "--token-file", self.sim_tokens,
                                "--devices", "2", "--rate", "10").start())
        self.sub = self.own(Subscriber(self.broker.port, ("ops/#", "homeassistant/#")))

    def write(self, path, text, mode=0o600):
        with open(path, "w") as f:
            f.write(text + "\n")
        os.chmod(path, mode)

    def test_env_only_rides_through_401_on_refresh_alone(self):
        """A container's configuration: T2M_* only, the access token in a read-only secret
        directory and expired (the platform answers 401), the refresh token in a writable state
        directory. The bridge refreshes, persists the rotated token, and positions flow."""
        self.assert_no_default_config()
        self.world("nothing-yet")
        secrets = os.path.join(self.tmp, "secrets")
        state = os.path.join(self.tmp, "state")
        os.mkdir(secrets)
        os.mkdir(state, 0o700)
        expired = make_jwt(int(time.time()) - 3600, "expired")
        self.write(os.path.join(secrets, "t2m_token"), expired)
        self.write(os.path.join(state, "refresh_token"), "ref-0")
        os.chmod(secrets, 0o500)  # read-only, as a mounted secret
        server = RefreshServer(self.tmp, self.sim_tokens, first_refresh="ref-0",
                               expires_in=7200, jwt=True, tls=False).start()
        self.procs.append(server)
        env = self.env_config(T2M_ACCESS_TOKEN_FILE=os.path.join(secrets, "t2m_token"),
                              T2M_REFRESH_TOKEN_FILE=os.path.join(state, "refresh_token"),
                              T2M_REFRESH_URL=server.url, T2M_MQTT_CLIENT="lws")
        self.bridge = OpsBridge(self.tmp, None, env)
        check = self.bridge.run("--check-config")
        self.assertEqual(check.returncode, 0, check.stderr)
        self.bridge.start()
        wait_for(lambda: len(self.positions()) >= 2, 30, "positions after the refresh")
        self.assertGreaterEqual(self.sim.stats()["auth_failures"], 1)  # the 401 happened
        self.assertEqual(server.requests[0][2], {"AccessToken": expired, "RefreshToken": "ref-0"})
        with open(os.path.join(state, "refresh_token")) as f:
            self.assertEqual(f.read(), "ref-%d\n" % server.n)
        # the new token's expiry, everywhere SPEC 7 names it
        status = wait_for(lambda: (lambda s: s if s and "token_expires" in s else None)(
            self.sub.json("ops/inst1/status")), 10, "token_expires in the status")
        exp = int(json.loads(base64url(self.sim.stats()["last_auth"]["access_token"]
                                       .split(".")[1]))["exp"])
        self.assertEqual(status["token_expires"],
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp)))
        self.assertEqual(self.metrics()['t2m_token_expiry_timestamp_seconds{instance="inst1"}'],
                         exp)
        out = self.bridge.output()
        for secret in (expired, "ref-0", "ref-1", self.sim.stats()["last_auth"]["access_token"]):
            self.assertNotIn(secret, out)
        self.assertNotIn("no refresh_token_file is set", out)  # a refresh is configured
        self.assertEqual(self.bridge.stop(), 0)

    def test_expiry_shown_and_warned_without_refresh(self):
        """An access token that ends in 30 minutes and no refresh: the exp in /metrics, the
        status and Home Assistant's sensor, and a warning at start-up."""
        exp = int(time.time()) + 1800
        token = make_jwt(exp)
        self.world(token)
        tokfile = os.path.join(self.tmp, "token")
        self.bridge = OpsBridge(self.tmp, None, self.env_config())
        self.write(tokfile, token)
        self.bridge.start()
        wait_for(lambda: "expires in 30 min" in self.bridge.output(), 15, "the expiry warning")
        self.assertIn("no refresh_token_file is set", self.bridge.output())
        self.assertNotIn(token, self.bridge.output())
        wait_for(lambda: self.metrics().get('t2m_token_expiry_timestamp_seconds{instance="inst1"}')
                 == exp, 10, "the expiry gauge")
        status = wait_for(lambda: self.sub.json("ops/inst1/status"), 10, "the status")
        self.assertEqual(status["token_expires"], time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                time.gmtime(exp)))
        cfg = wait_for(lambda: self.sub.json(
            "homeassistant/device/t2m_bridge_telematics2mqtt/config"), 10, "the bridge config")
        sensor = cfg["components"]["inst1_token_expires"]
        self.assertEqual(sensor["device_class"], "timestamp")
        self.assertEqual(sensor["state_topic"], "ops/inst1/status")
        self.assertEqual(self.bridge.output().count("expires in"), 1)  # hourly, not per tick
        self.assertEqual(self.bridge.stop(), 0)


def base64url(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class TestExitStatus(Base):
    def test_configuration_errors_exit_2(self):
        self.assert_no_default_config()
        b = OpsBridge(self.tmp, None, {"T2M_INSTANCE_ID": "i", "T2M_ACCESS_TOKEN": "t",
                                       "T2M_UNITS": "furlongs"})
        r = b.run(timeout=20)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("T2M_UNITS", r.stderr)
        r = OpsBridge(self.tmp, None, {}).run(timeout=20)  # nothing configured at all
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("T2M_INSTANCE_ID", r.stderr)
        r = OpsBridge(self.tmp, None, {}).run("-c", os.path.join(self.tmp, "missing.conf"))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("missing.conf", r.stderr)
        r = OpsBridge(self.tmp, None, {}).run("--no-such-option")
        self.assertEqual(r.returncode, 2, r.stderr)
        b = OpsBridge(self.tmp, 'instances = ( { id = "i"; access_token = "t"; } );\n'
                      'mqtt = { qos = 7; };\n', {})
        r = b.run()
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(b.conf_path + ":2:", r.stderr)

    def test_listen_port_taken_exits_1_with_lws_error_as_json(self):
        """A fatal runtime error exits 1; lws' own error line comes through the bridge's logger."""
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        conf = bridge_conf("ws://127.0.0.1:1/realtime", "tcp://127.0.0.1:1",
                           http="127.0.0.1:%d" % port)
        conf = conf.replace('log = { level = "debug"; };',
                            'log = { level = "info"; format = "json"; };')
        self.bridge = OpsBridge(self.tmp, conf, {})
        self.bridge.start()
        self.assertEqual(self.bridge.wait_exit(), 1)
        lines = self.bridge.output().splitlines()
        objs = [json.loads(line) for line in lines]
        self.assertTrue(any(o["module"] == "lws" and o["level"] == "error" and
                            str(port) in o["msg"] for o in objs), lines)
        self.assertTrue(any(o["module"] == "main" and "http.listen" in o["msg"] for o in objs),
                        lines)

    def test_healthcheck_without_a_bridge_exits_1(self):
        port = free_port()
        r = OpsBridge(self.tmp, None, {}).run("--healthcheck", "http://127.0.0.1:%d/healthz" % port)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect", r.stderr)


class TestLogging(Base):
    def log_conf(self, fmt, name="t2m"):
        return bridge_conf(self.sim.url, self.broker.url, http="",
                           mqtt_extra='client_id = "%s"; base_topic = "%s";' % (name, name)).replace(
            'log = { level = "debug"; };', 'log = { level = "debug"; format = "%s"; };' % fmt)

    def test_json_every_line_one_object_lws_included(self):
        self.start_world(devices=2, rate=20)
        self.bridge = OpsBridge(self.tmp, self.log_conf("json"), {}).start()
        wait_for(lambda: len(self.positions("t2m")) >= 2, 15, "positions")
        # provoke warnings: the broker goes away and comes back
        self.broker.stop(kill=True)
        wait_for(lambda: "connection lost" in self.bridge.output(), 10, "connection lost logged")
        self.broker.start()
        self.assertEqual(self.bridge.stop(), 0)
        lines = self.bridge.output().splitlines()
        self.assertGreater(len(lines), 5)
        modules = set()
        for line in lines:
            o = json.loads(line)  # raises on a line that is not exactly one JSON object
            self.assertIsInstance(o, dict, line)
            self.assertEqual(set(o), {"time", "level", "module", "msg"}, line)
            self.assertRegex(o["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(o["level"], ("error", "warn", "info", "debug"))
            self.assertFalse(o["msg"].endswith("\n"), line)
            modules.add(o["module"])
        self.assertIn("lws", modules)  # lws' notices at debug level
        self.assertTrue({"main", "mqtt", "upstream"} <= modules, modules)

    def test_journal_stream_text_without_timestamps(self):
        self.start_world(devices=1, rate=10)
        plain = self.own(OpsBridge(self.tmp, self.log_conf("text", "plain"), {}).start())
        self.bridge = OpsBridge(self.tmp, self.log_conf("text"), {"JOURNAL_STREAM": "8:123456"})
        self.bridge.start()
        wait_for(lambda: "inst1: subscribed" in self.bridge.output() and
                 "inst1: subscribed" in plain.output(), 15, "both bridges to subscribe")
        self.assertEqual(plain.stop(), 0)
        self.assertEqual(self.bridge.stop(), 0)
        # outside systemd: each text line starts with its timestamp
        for line in plain.output().splitlines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                                   r"(error|warn |info |debug) ")
        # under systemd the journal stamps lines itself: a syslog priority prefix, no time
        lines = self.bridge.output().splitlines()
        self.assertGreater(len(lines), 3)
        for line in lines:
            self.assertRegex(line, r"^<[3-7]>[a-z]+: ")
            self.assertIsNone(ISO_TIME.search(line), line)
            self.assertNotRegex(line, r"\[\d{4}/\d\d/\d\d ", line)  # nor lws' own stamp
        self.assertTrue(any(line.startswith("<7>lws: ") for line in lines), lines)


class TestSystemdNotify(Base):
    def test_ready_watchdog_stopping(self):
        self.start_world(devices=1, rate=5)
        path = os.path.join(self.tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        sock.settimeout(0.1)
        got = []
        lock = threading.Lock()
        stop = threading.Event()

        def receive():
            while not stop.is_set():
                try:
                    data = sock.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    return
                with lock:
                    got.extend((time.monotonic(), s) for s in data.decode().split("\n") if s)

        t = threading.Thread(target=receive, daemon=True)
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(stop.set)

        def seen(msg):
            with lock:
                return [ts for ts, s in got if s == msg]

        # sd_watchdog_enabled() accepts WATCHDOG_PID unset (the pid is not known before the start)
        conf = bridge_conf(self.sim.url, self.broker.url, http="")
        self.bridge = OpsBridge(self.tmp, conf, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "500000"})
        self.bridge.start()
        wait_for(lambda: seen("READY=1"), 10,
                 "READY=1 on NOTIFY_SOCKET (is the bridge built with libsystemd-dev?)")
        wait_for(lambda: len(seen("WATCHDOG=1")) >= 4, 10, "repeated WATCHDOG=1")
        pets = seen("WATCHDOG=1")
        gaps = [b - a for a, b in zip(pets, pets[1:])]
        # petted at half the interval (0.25 s), not at the 0.5 s systemd would kill at; the median
        # gap, so that one late turn of a loaded machine's scheduler does not count
        self.assertLess(sorted(gaps)[len(gaps) // 2], 0.4 * SLOW, gaps)
        self.assertFalse(seen("STOPPING=1"))
        self.assertEqual(self.bridge.stop(), 0)
        wait_for(lambda: seen("STOPPING=1"), 5, "STOPPING=1 after SIGTERM")
        self.assertGreater(seen("STOPPING=1")[0], seen("READY=1")[0])

    def test_no_watchdog_without_systemd(self):
        """WATCHDOG_USEC alone (no NOTIFY_SOCKET): nothing to notify, the bridge just runs."""
        self.start_world(devices=1, rate=5)
        conf = bridge_conf(self.sim.url, self.broker.url, http="")
        self.bridge = OpsBridge(self.tmp, conf, {"WATCHDOG_USEC": "500000"}).start()
        wait_for(lambda: self.positions("telematics"), 15, "a position")
        self.assertEqual(self.bridge.stop(), 0)


if __name__ == "__main__":
    unittest.main()
