#!/usr/bin/python3
"""bench/run.py - the benchmark: sim (blast) -> bridge -> private mosquitto -> bench-sub, on loopback.

    /usr/bin/python3 bench/run.py --build DIR [--runs N] [--quick] [--only SECTION,...]

Sections: throughput (end-to-end updates/s and bridge CPU per update, QoS 0/1, 1 / 1,000 /
100,000 devices, both MQTT backends), sink (the bridge's own ceiling: bench-sink acknowledges at
once in place of the broker, which is then not the limit), latency (p50/p99/p99.9 at a steady 5,000 updates/s),
memory (peak RSS, bytes per tracked device at 1,000,000 devices), baseline (raw Paho and
libmosquitto publishers into the same broker and subscriber). Every configuration runs --runs
times (default 5) on a fresh broker, sim and bridge; the table gives median [min - max].

Only what bench-sub actually received live counts. CPU is utime+stime from /proc/PID/stat,
sampled after the bridge is connected and idle and again after the last delivery. The sim's CPU is
sampled the same way: a sim near 100 % of a core would mean the sender limits, and the table
flags it.
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

MOSQUITTO = "/usr/sbin/mosquitto"
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise RuntimeError("timed out waiting for " + what)


def cpu_s(pid):
    """utime + stime of a process (all threads), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class Syscalls:
    """Counts every system call of a process (all threads) from now until stop(): perf's
    raw_syscalls:sys_enter tracepoint (/proc/PID/io would miss send() and recv())."""

    def __init__(self, pid):
        self.p = subprocess.Popen(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p",
                                   str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
        time.sleep(0.3)  # perf attaches

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        _, err = self.p.communicate(timeout=30)
        for line in err.splitlines():
            f = line.split(",")
            if len(f) > 2 and f[2] == "raw_syscalls:sys_enter" and f[0].isdigit():
                return int(f[0])
        raise RuntimeError("perf stat gave no syscall count: " + err)


NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node-bridge")


def node_bridge_dir(build):
    """bench/node-bridge installed (npm, once) into the build tree: the ws + mqtt.js peer."""
    dest = os.path.join(build, "node-bridge")
    os.makedirs(dest, exist_ok=True)
    for name in ("package.json", "bridge.js"):
        with open(os.path.join(NODE_DIR, name)) as src, open(os.path.join(dest, name), "w") as f:
            f.write(src.read())
    if not all(os.path.isdir(os.path.join(dest, "node_modules", m)) for m in ("ws", "mqtt")):
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", dest],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError("npm install of the Node bridge failed:\n" + r.stdout + r.stderr)
    return dest


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


class Procs:
    """Every process of one run; stop() ends them all (only the ones started here)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, name, argv, stdout=None):
        log = open(os.path.join(self.tmp, name + ".log"), "a")
        p = subprocess.Popen(argv, stdout=stdout or log, stderr=log, stdin=subprocess.DEVNULL,
                             text=True)
        log.close()
        self.procs.append(p)
        return p

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()
        self.procs = []


class Run:
    """One fresh broker + sim + subscriber (+ bridge) in a temporary directory."""

    def __init__(self, build, tmp):
        self.build = build
        self.tmp = tmp
        self.p = Procs(tmp)

    def broker(self):
        self.bport = free_port()
        conf = os.path.join(self.tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            # Unlimited queues: the broker must not drop what the bridge delivered to it.
            # set_tcp_nodelay: with Nagle on its side, the broker holds small QoS 0 packets to
            # bench-sub until a (delayed, up to 40 ms) ACK: that is the broker's latency, not
            # the bridge's (which turns Nagle off itself).
            f.write("listener %d 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n"
                    "max_queued_messages 0\nmax_queued_bytes 0\nset_tcp_nodelay true\n" % self.bport)
        self.mosq = self.p.start("mosquitto", [MOSQUITTO, "-c", conf])

        def accepts():
            if self.mosq.poll() is not None:
                raise RuntimeError("mosquitto exited")
            try:
                socket.create_connection(("127.0.0.1", self.bport), 0.5).close()
                return True
            except OSError:
                return False

        wait_for(accepts, 10, "mosquitto")

    def sim(self, *args):
        self.simp = self.p.start("sim", [os.path.join(self.build, "tests/sim/telematics-sim"),
                                         "--port", "0", "--instance", "bench", "--token", "bench",
                                         "--ping-interval", "0"] + list(args),
                                 stdout=subprocess.PIPE)
        line = self.simp.stdout.readline()
        m = re.search(r"listening on .*:(\d+)", line)
        if not m:
            raise RuntimeError("sim did not start: %r" % line)
        self.sport = int(m.group(1))

    def sim_control(self, path):
        return json.loads(http_get("http://127.0.0.1:%d/control/%s" % (self.sport, path))[1])

    def sink(self, *args):
        """bench-sink in place of the broker and the subscriber."""
        self.bport = free_port()
        self.subp = self.p.start("sink", [os.path.join(self.build, "bench/bench-sink"), "-p",
                                          str(self.bport)] + list(args), stdout=subprocess.PIPE)
        if self.subp.stdout.readline().strip() != "ready":
            raise RuntimeError("bench-sink did not start")
        self.mosq = self.subp  # its CPU is the "broker" column

    def sub(self, *args):
        self.subp = self.p.start("sub", [os.path.join(self.build, "bench/bench-sub"), "-p",
                                         str(self.bport)] + list(args), stdout=subprocess.PIPE)
        if self.subp.stdout.readline().strip() != "ready":
            raise RuntimeError("bench-sub did not subscribe")

    def sub_result(self, timeout):
        try:
            out, _ = self.subp.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.subp.send_signal(signal.SIGINT)
            out, _ = self.subp.communicate(timeout=10)
        return json.loads(out.strip().splitlines()[-1])

    def bridge(self, qos, backend, devices, units=""):
        self.hport = free_port()
        conf = os.path.join(self.tmp, "bridge.conf")
        with open(conf, "w") as f:
            f.write('upstream = { url = "ws://127.0.0.1:%d/realtime/api/v1/ws/realtime"; '
                    'backoff_min = 0.05; backoff_max = 0.5; max_devices = %d; };\n'
                    'instances = ( { id = "bench"; access_token = "bench"; } );\n'
                    'mqtt = { url = "tcp://127.0.0.1:%d"; client = "%s"; qos = %d; };\n'
                    'units = { %s };\nhomeassistant = { enabled = false; };\n'
                    'http = { listen = "127.0.0.1:%d"; };\nlog = { level = "warning"; };\n'
                    % (self.sport, max(devices * 2, 1000), self.bport, backend, qos, units,
                       self.hport))
        self.br = self.p.start("bridge", [os.path.join(self.build, "telematics2mqtt"), "-c", conf])

        def ready():
            if self.br.poll() is not None:
                raise RuntimeError("bridge exited: see %s/bridge.log" % self.tmp)
            try:
                ok = http_get("http://127.0.0.1:%d/healthz" % self.hport, 1)[0] == 200
            except OSError:
                return False
            return ok and self.sim_control("stats").get("authenticated_active", 0) >= 1

        wait_for(ready, 30, "the bridge to connect")

    def node_bridge(self, qos):
        """The Node.js peer (bench/node-bridge) in place of telematics2mqtt."""
        d = node_bridge_dir(self.build)
        self.br = self.p.start("node-bridge", [
            "node", os.path.join(d, "bridge.js"),
            "ws://127.0.0.1:%d/realtime/api/v1/ws/realtime" % self.sport, "bench", "bench",
            "mqtt://127.0.0.1:%d" % self.bport, str(qos)], stdout=subprocess.PIPE)
        if self.br.stdout.readline().strip() != "ready":
            raise RuntimeError("the Node bridge did not connect: see %s/node-bridge.log" % self.tmp)
        wait_for(lambda: self.sim_control("stats").get("authenticated_active", 0) >= 1, 30,
                 "the Node bridge to authenticate")

    def metrics(self):
        text = http_get("http://127.0.0.1:%d/metrics" % self.hport)[1]
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = out.get(k, 0) + float(v)
        return out


def blast_run(build, qos, backend, devices, count, memory=False, perf=None, sink=False):
    with tempfile.TemporaryDirectory(prefix="t2m-bench-") as tmp:
        r = Run(build, tmp)
        try:
            if sink:
                r.sink("-n", str(count), "--idle-ms", "3000")
            else:
                r.broker()
            r.sim("--devices", str(devices), "--rate", "0")
            if not sink:
                r.sub("-t", "telematics/+/+/position", "-n", str(count), "--idle-ms", "3000")
            if backend == "node":
                r.node_bridge(qos)
            else:
                r.bridge(qos, backend, devices)
            time.sleep(0.2)  # let the connect-time publishes (status, state) settle
            rss0 = status_kb(r.br.pid, "VmRSS")
            # Blast on the next connection: the bridge reconnects at once after the drop.
            r.sim_control("set?blast=%d" % count)
            if perf:
                rec = subprocess.Popen(["perf", "record", "-g", "-q", "-o", perf, "-p",
                                        str(r.br.pid)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                time.sleep(0.5)
            sc = Syscalls(r.br.pid)
            b0, s0, m0 = cpu_s(r.br.pid), cpu_s(r.simp.pid), cpu_s(r.mosq.pid)
            r.sim_control("drop")
            res = r.sub_result(timeout=max(60, count / 2000))
            if perf:
                rec.send_signal(signal.SIGINT)
                rec.wait(30)
            # bench-sink has exited at its count: its CPU is in its report
            b1, s1 = cpu_s(r.br.pid), cpu_s(r.simp.pid)
            m1 = m0 + res["cpu_s"] if sink else cpu_s(r.mosq.pid)
            calls = sc.stop()
            m = r.metrics() if backend != "node" else {}
            n = res["count"]
            out = {
                "rate": res["rate"], "delivered": n,
                "cpu_us": (b1 - b0) * 1e6 / n if n else float("nan"),
                "syscalls": calls / n if n else float("nan"),
                "sim_cpu_pct": 100 * (s1 - s0) / res["elapsed"] if res["elapsed"] else 0,
                "broker_cpu_pct": 100 * (m1 - m0) / res["elapsed"] if res["elapsed"] else 0,
                "sub_cpu_pct": 100 * res["cpu_s"] / res["elapsed"] if res["elapsed"] else 0,
                "hwm_kb": status_kb(r.br.pid, "VmHWM"),
                "received": m.get("t2m_updates_received_total", 0),
                "dropped": sum(v for k, v in m.items() if k.startswith("t2m_updates_dropped")),
                "devices": m.get("t2m_devices", 0),
                # MQTT messages per update (position, and trip while one is open): the broker's
                # load. The Node peer publishes the position only.
                "msgs": (m["t2m_messages_published_total"] / m["t2m_updates_received_total"]
                         if m.get("t2m_updates_received_total") else 1.0),
            }
            if memory:
                out["rss_delta_kb"] = status_kb(r.br.pid, "VmRSS") - rss0
            return out
        finally:
            r.p.stop()


def latency_run(build, qos, backend, seconds):
    with tempfile.TemporaryDirectory(prefix="t2m-bench-") as tmp:
        r = Run(build, tmp)
        try:
            r.broker()
            r.sim("--devices", "1000", "--rate", "5000", "--stamp-ms")
            r.sub("-t", "telematics/+/+/position", "--latency", "--skip", "5000", "--idle-ms", "0")
            r.bridge(qos, backend, 1000, units='timestamp = "unix_ms";')
            time.sleep(1 + seconds)
            r.subp.send_signal(signal.SIGINT)
            res = r.sub_result(timeout=10)
            return {"p50": res["p50"], "p99": res["p99"], "p999": res["p999"],
                    "max": res["max"], "samples": res["samples"], "rate": res["rate"]}
        finally:
            r.p.stop()


def baseline_run(build, lib, qos, count):
    with tempfile.TemporaryDirectory(prefix="t2m-bench-") as tmp:
        r = Run(build, tmp)
        try:
            r.broker()
            r.sub("-t", "telematics/#", "-n", str(count), "--idle-ms", "3000")
            pub = subprocess.run([os.path.join(build, "bench/bench-pub"), "--lib", lib, "-p",
                                  str(r.bport), "--qos", str(qos), "-n", str(count), "--topics",
                                  "1000", "--inflight", "1000"],
                                 capture_output=True, text=True, timeout=max(60, count / 2000))
            if pub.returncode != 0:
                raise RuntimeError("bench-pub failed: " + pub.stderr)
            p = json.loads(pub.stdout.strip().splitlines()[-1])
            res = r.sub_result(timeout=30)
            return {"rate": res["rate"], "delivered": res["count"],
                    "cpu_us": p["cpu_us_per_msg"], "pub_rate": p["rate"]}
        finally:
            r.p.stop()


def perf_top(data, sort, n):
    """The n largest self-time entries of a perf recording, "name 12 %" joined by commas."""
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--sort",
                          sort, "-g", "none", "--percent-limit", "1"],
                         capture_output=True, text=True)
    out = []
    for line in rep.stdout.splitlines():
        m = re.match(r"\s+(\d+\.\d+)%\s+(.*)", line)
        if m and len(out) < n:
            name = re.sub(r"\s+", " ", m.group(2).strip())
            name = re.sub(r" \[[.k]\] ", ": ", name).replace(" - -", "")
            name = re.sub(r"\.so[.\d]*", "", name).replace("[kernel.kallsyms]", "kernel")
            out.append("%s %.0f %%" % (name, float(m.group(1))))
    return ", ".join(out) or "n/a"


def fmt(vals, digits=0):
    vals = [v for v in vals if v == v]
    if not vals:
        return "n/a"
    f = "%%.%df" % digits
    med = statistics.median(vals)
    if len(vals) == 1:
        return f % med
    return (f + " [" + f + "–" + f + "]") % (med, min(vals), max(vals))


def repeat(runs, fn, label):
    out = []
    for i in range(runs):
        out.append(fn())
        sys.stderr.write("  %s run %d/%d: %s\n" % (label, i + 1, runs, json.dumps(out[-1])))
    return out


def col(results, key):
    return [r[key] for r in results]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "../build/bench"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="1 run, smaller blasts: a sanity check")
    ap.add_argument("--only", default="throughput,sink,latency,memory,baseline")
    ap.add_argument("--backends", default="lws,mosquitto,paho,node",
                    help="MQTT backends of the bridge, and node: the ws + mqtt.js peer "
                    "(bench/node-bridge, installed with npm into the build tree)")
    a = ap.parse_args()
    runs = 1 if a.quick else a.runs
    only = a.only.split(",")
    backends = a.backends.split(",")
    build = os.path.abspath(a.build)
    scale = 0.2 if a.quick else 1.0
    lines = []

    def emit(s=""):
        lines.append(s)
        print(s, flush=True)

    emit("telematics2mqtt benchmark: %d run(s) per row, median [min–max]; %d CPUs, %s" %
         (runs, os.cpu_count(), time.strftime("%Y-%m-%d %H:%M")))
    if "throughput" in only:
        emit()
        emit("| backend | QoS | devices | updates/s end to end | MQTT messages/update | "
             "bridge CPU µs/update | syscalls/update | broker CPU % | sim CPU % | sub CPU % | "
             "lost (max) |")
        emit("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for backend in backends:
            for qos in (0, 1):
                for devices in ((1000,) if backend == "node" else (1, 1000, 100000)):
                    # the same blast for every backend: the first update of a device publishes
                    # one message more (its trip opens), so rows compare only at equal sizes
                    n = int((100000 if backend == "paho" else 200000) * scale)
                    rs = repeat(runs, lambda: blast_run(build, qos, backend, devices, n),
                                "%s qos%d %d dev" % (backend, qos, devices))
                    emit("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %d |" % (
                        backend, qos, devices, fmt(col(rs, "rate")), fmt(col(rs, "msgs"), 2),
                        fmt(col(rs, "cpu_us"), 2),
                        fmt(col(rs, "syscalls"), 2), fmt(col(rs, "broker_cpu_pct")),
                        fmt(col(rs, "sim_cpu_pct")),
                        fmt(col(rs, "sub_cpu_pct")),
                        max(n - d for d in col(rs, "delivered"))))
    if "sink" in only:
        # The bridge's own ceiling: bench-sink acknowledges every QoS 1 message at once, so the
        # broker is not the limit (the sim may be: its CPU column says).
        emit()
        emit("| sink (acks at once), QoS 1, 1,000 devices | updates/s | MQTT messages/update | "
             "bridge CPU µs/update | syscalls/update | bridge CPU % | sim CPU % |")
        emit("| --- | --- | --- | --- | --- | --- | --- |")
        for backend in [b for b in backends if b != "node"]:
            n = int((100000 if backend == "paho" else 400000) * scale)
            rs = repeat(runs, lambda: blast_run(build, 1, backend, 1000, n, sink=True),
                        "sink %s" % backend)
            emit("| %s | %s | %s | %s | %s | %s | %s |" % (
                backend, fmt(col(rs, "rate")), fmt(col(rs, "msgs"), 2), fmt(col(rs, "cpu_us"), 2),
                fmt(col(rs, "syscalls"), 2),
                fmt([r["cpu_us"] * r["rate"] / 1e4 for r in rs]), fmt(col(rs, "sim_cpu_pct"))))
    if "profile" in only:
        # What limits each: where the bridge's own CPU goes (perf, self time by library and the
        # top functions) beside how busy the broker was. Broker CPU near 100 % = the broker (one
        # thread) is the limit; a bridge mostly in the kernel = wake-ups and syscalls.
        emit()
        emit("| profile: blast, QoS 1, 1,000 devices | updates/s | broker CPU % | "
             "bridge µs/update | bridge self time by library | top functions |")
        emit("| --- | --- | --- | --- | --- | --- |")
        for backend in backends:
            data = os.path.join(tempfile.gettempdir(), "t2m-bench-perf-%s.data" % backend)
            res = blast_run(build, 1, backend, 1000, int(200000 * scale), perf=data)
            emit("| %s | %.0f | %.0f | %.2f | %s | %s |" % (
                backend, res["rate"], res["broker_cpu_pct"], res["cpu_us"],
                perf_top(data, "dso", 5), perf_top(data, "dso,symbol", 4)))
    if "latency" in only:
        emit()
        emit("| backend | QoS | latency at 5,000 updates/s, ms: p50 | p99 | p99.9 | max |")
        emit("| --- | --- | --- | --- | --- | --- |")
        for backend in [b for b in backends if b != "node"]:  # the peer sends no timestamps
            for qos in (0, 1):
                rs = repeat(runs, lambda: latency_run(build, qos, backend, 2 if a.quick else 6),
                            "latency %s qos%d" % (backend, qos))
                emit("| %s | %d | %s | %s | %s | %s |" % (
                    backend, qos, fmt(col(rs, "p50"), 2), fmt(col(rs, "p99"), 2),
                    fmt(col(rs, "p999"), 2), fmt(col(rs, "max"), 2)))
    if "memory" in only:
        emit()
        emit("| memory (backend %s, QoS 0) | value |" % backends[0])
        emit("| --- | --- |")
        small = repeat(runs, lambda: blast_run(build, 0, backends[0], 1000, int(100000 * scale)),
                       "memory 1000 dev")
        emit("| peak RSS, 1,000 devices | %s MB |" % fmt([r["hwm_kb"] / 1024 for r in small], 1))
        if "node" in backends:
            peer = repeat(runs, lambda: blast_run(build, 0, "node", 1000, int(100000 * scale)),
                          "memory node 1000 dev")
            emit("| peak RSS, the Node bridge, 1,000 devices | %s MB |" %
                 fmt([r["hwm_kb"] / 1024 for r in peer], 1))
        ndev = 1000000 if not a.quick else 200000
        big = repeat(runs, lambda: blast_run(build, 0, backends[0], ndev, ndev, memory=True),
                     "memory %d dev" % ndev)
        emit("| peak RSS, %d devices | %s MB |" % (ndev, fmt([r["hwm_kb"] / 1024 for r in big], 1)))
        emit("| RSS growth per tracked device, %d devices | %s bytes |" % (
            ndev, fmt([r["rss_delta_kb"] * 1024 / max(r["devices"], 1) for r in big])))
    if "baseline" in only:
        emit()
        emit("| raw publisher, 1,000 topics, 250 B retained, ≤ 1,000 in flight | QoS | "
             "delivered/s | publisher CPU µs/msg |")
        emit("| --- | --- | --- | --- |")
        for lib in ("mosquitto", "paho"):
            for qos in (0, 1):
                n = int((400000 if lib == "mosquitto" else 100000) * scale)
                rs = repeat(runs, lambda: baseline_run(build, lib, qos, n),
                            "baseline %s qos%d" % (lib, qos))
                emit("| %s | %d | %s | %s |" % (lib, qos, fmt(col(rs, "rate")),
                                                fmt(col(rs, "cpu_us"), 2)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
