#!/usr/bin/python3
"""soak.py - the bridge under a steady feed with a random fault every few seconds (issue 3).

A program that reports numbers, not a test: it runs mosquitto, telematics-sim and the bridge on
loopback for --seconds (default 600) at --rate updates/s (default 2000) and every --fault-every
seconds (default 20) injects one random fault: broker killed and restarted, upstream dropped
(RST), upstream aborted after some updates, upstream silent (idle_timeout fires), or a 401 with
the token rotated. At the end it stops the feed, injects one known last update per device and
checks that the broker's retained state is exactly that for every device. Prints updates sent,
received, published, dropped by reason, reconnects, and the final check.

  /usr/bin/python3 bench/soak.py --build build-release --seconds 180
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"),
                    help="CMake build directory holding telematics2mqtt and tests/sim")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--fault-every", type=float, default=20)
    ap.add_argument("--client", default="mosquitto", choices=("mosquitto", "paho"))
    ap.add_argument("--seed", type=int, default=None)
    return ap.parse_args()


ARGS = parse_args()
os.environ.setdefault("T2M_BIN", os.path.join(ARGS.build, "telematics2mqtt"))
os.environ.setdefault("T2M_SIM", os.path.join(ARGS.build, "tests", "sim", "telematics-sim"))
from harness import (Bridge, Broker, Sim, bridge_conf, free_port,  # noqa: E402
                     retained_snapshot, wait_for)
from test_resilience import http_get, write_secret  # noqa: E402


def metrics(port):
    code, body = http_get(port, "/metrics")
    out = {}
    for line in (body or "").splitlines() if code == 200 else ():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def log(msg):
    sys.stdout.write("[%7.1f s] %s\n" % (time.monotonic() - T0, msg))
    sys.stdout.flush()


T0 = time.monotonic()


class Soak:
    def __init__(self, tmp):
        self.tmp = tmp
        self.rng = random.Random(ARGS.seed)
        self.broker = Broker(tmp).start()
        self.sim_tokens = os.path.join(tmp, "sim-tokens")
        self.token_file = os.path.join(tmp, "token")
        self.token_n = 0
        write_secret(self.sim_tokens, "tok-0")
        write_secret(self.token_file, "tok-0")
        self.sim = Sim(tmp, "--instance", "inst1", "--token-file", self.sim_tokens,
                       "--devices", str(ARGS.devices), "--rate", str(ARGS.rate)).start()
        self.http = free_port()
        inst = '( { id = "inst1"; access_token_file = "%s"; } )' % self.token_file
        conf = bridge_conf(self.sim.url, self.broker.url, instances=inst,
                           http="127.0.0.1:%d" % self.http,
                           mqtt_extra='client = "%s";' % ARGS.client)
        conf = conf.replace("backoff_max = 0.5; };", "backoff_max = 2.0; idle_timeout = 3; };")
        conf = conf.replace('level = "debug"', 'level = "info"')
        self.bridge = Bridge(tmp, conf).start()
        wait_for(lambda: metrics(self.http).get("t2m_mqtt_connected") == 1, 20, "bridge up")
        self.faults = {}

    def wait_reconnect(self, before, what):
        wait_for(lambda: self.sim.stats()["authenticated"] > before, 30, what)

    # The faults. Each returns once it has happened; the feed keeps running throughout.
    def broker_restart(self):
        self.broker.stop(kill=True)
        down = self.rng.uniform(1, 5)
        time.sleep(down)
        self.broker.start()
        return "broker killed, restarted after %.1f s" % down

    def sim_drop(self):
        before = self.sim.stats()["authenticated"]
        self.sim.control("drop")
        self.wait_reconnect(before, "reconnect after drop")
        return "upstream reset (RST)"

    def sim_abort(self):
        st = self.sim.stats()
        before, conns = st["authenticated"], st["connections"]
        n = self.rng.randint(1, 2000)
        self.sim.control("set?abort_after=%d" % n)
        wait_for(lambda: self.sim.stats()["connections"] > conns, 30, "abort")
        self.sim.control("set?abort_after=0")
        self.wait_reconnect(before, "reconnect after abort")
        return "upstream aborted after %d updates" % n

    def sim_silent(self):
        st = self.sim.stats()
        before, conns = st["authenticated"], st["connections"]
        self.sim.control("set?silent_after=100")
        wait_for(lambda: self.sim.stats()["connections"] > conns, 30, "idle timeout")
        self.sim.control("set?silent_after=0")
        self.wait_reconnect(before, "reconnect after silence")
        return "upstream silent (idle_timeout)"

    def token_401(self):
        self.token_n += 1
        tok = "tok-%d" % self.token_n
        write_secret(self.sim_tokens, tok)
        write_secret(self.token_file, tok)
        before = self.sim.stats()["authenticated"]
        self.sim.control("drop")
        self.wait_reconnect(before, "reconnect with the new token")
        if self.sim.stats()["last_auth"]["access_token"] != tok:
            raise AssertionError("reconnected without the rotated token")
        return "401, token rotated to %s" % tok

    def run(self):
        faults = [self.broker_restart, self.sim_drop, self.sim_abort, self.sim_silent,
                  self.token_401]
        end = T0 + ARGS.seconds
        next_fault = time.monotonic() + ARGS.fault_every
        while time.monotonic() < end:
            time.sleep(max(0, min(next_fault, end) - time.monotonic()))
            if not self.bridge.alive():
                raise AssertionError("the bridge died")
            if time.monotonic() >= end:
                break
            f = self.rng.choice(faults)
            what = f()
            self.faults[f.__name__] = self.faults.get(f.__name__, 0) + 1
            m = metrics(self.http)
            log("%-40s received %d published %d queue %d" % (
                what, m.get("t2m_updates_received_total", 0),
                m.get("t2m_messages_published_total", 0), m.get("t2m_offline_queue_depth", 0)))
            next_fault += ARGS.fault_every

    def final_check(self):
        """Stops the feed, injects a known last update per device, compares the retained state."""
        self.sim.control("set?rate=0")
        wait_for(lambda: metrics(self.http).get("t2m_mqtt_connected") == 1, 30, "mqtt")
        wait_for(lambda: self.sim.stats()["authenticated_active"] >= 1, 30, "upstream")
        base = int(time.time()) + 1000
        finals = {}
        for i, tok in enumerate(self.sim.stats()["device_tokens"]):
            finals[tok] = "FINAL-%d" % i
            self.sim.send({"type": "device_update", "device_token": tok,
                           "track_token": finals[tok],
                           "position": {"Latitude": 1 + i / 1e4, "Longitude": 2,
                                        "Timestamp": base + i}})

        def mismatches():
            snap = retained_snapshot(self.broker.port, "telematics/inst1/#", timeout=30)
            bad = [t for t, tt in finals.items()
                   if json.loads(snap.get("telematics/inst1/%s/position" % t, "{}"))
                   .get("track_token") != tt]
            return bad

        deadline = time.monotonic() + 60
        bad = mismatches()
        while bad and time.monotonic() < deadline:
            time.sleep(0.5)
            bad = mismatches()
        return len(finals), bad


def main():
    with tempfile.TemporaryDirectory() as tmp:
        s = Soak(tmp)
        log("soak: %.0f s, %.0f updates/s, %d devices, a fault every %.0f s, mqtt.client %s" % (
            ARGS.seconds, ARGS.rate, ARGS.devices, ARGS.fault_every, ARGS.client))
        ok = False
        try:
            s.run()
            n, bad = s.final_check()
            st = s.sim.stats()
            m = metrics(s.http)
            ok = not bad and s.bridge.alive()
            print("\n== soak report (%.0f s)" % (time.monotonic() - T0))
            print("faults injected:      %s" % ", ".join(
                "%s %d" % kv for kv in sorted(s.faults.items())))
            print("updates sent (sim):   %d" % st["updates_sent"])
            print("updates received:     %d" % m.get("t2m_updates_received_total", 0))
            print("messages published:   %d" % m.get("t2m_messages_published_total", 0))
            for k, v in sorted(m.items()):
                if k.startswith("t2m_updates_dropped_total"):
                    print("dropped %-30s %d" % (k.split("{")[1].rstrip("}"), v))
            print("upstream reconnects:  %d" % m.get("t2m_upstream_reconnects_total", 0))
            print("sim dropped (queue):  %d" % st["dropped"])
            print("final state check:    %s (%d devices%s)" % (
                "PASS" if not bad else "FAIL", n,
                "" if not bad else ", wrong: %d" % len(bad)))
        finally:
            rc = s.bridge.stop()
            print("bridge exit status:   %s" % rc)
            s.sim.stop()
            s.broker.stop()
        return 0 if ok and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
