"""test_artifacts.py - the deployment artifacts (docker/, deploy/kubernetes/, deploy/systemd/)
are consistent with the repository and with each other: every file they reference exists, the
probes and health checks point at /healthz, nothing runs as root, the unit passes
systemd-analyze, the Kubernetes config passes --check-config.

Environment: T2M_SRC (repository root; default: two levels up), T2M_BIN (the built daemon).
Needs python3-yaml (Debian package). Run: python3 -m unittest -v test_artifacts
"""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

SRC = os.path.abspath(os.environ.get("T2M_SRC", os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("T2M_BIN", "")
DOCKER = os.path.join(SRC, "docker")
K8S = os.path.join(SRC, "deploy", "kubernetes")
UNIT = os.path.join(SRC, "deploy", "systemd", "telematics2mqtt.service")
SEED = os.path.join(SRC, "deploy", "scripts", "t2m-seed-refresh-token")


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def compose_default(value):
    """Resolves compose's ${VAR:-default} / ${VAR} the way an empty environment would."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", value)


def dockerfile_stages(path):
    """{stage name: [lines]} of a Dockerfile, continuation lines joined."""
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages, cur = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            cur = m.group(2) or m.group(1)
            stages[cur] = [line]
        elif cur:
            stages[cur].append(line)
    return stages


class Dockerfile(unittest.TestCase):
    def setUp(self):
        self.path = os.path.join(DOCKER, "Dockerfile")
        self.stages = dockerfile_stages(self.path)

    def test_stages(self):
        self.assertEqual(list(self.stages), ["build", "base", "sim", "runtime"])
        self.assertTrue(self.stages["build"][0].startswith("FROM debian:12 "))
        self.assertTrue(self.stages["base"][0].startswith("FROM debian:12-slim "))

    def test_build_uses_ci_build_script(self):
        build = " ".join(self.stages["build"])
        self.assertIn("scripts/build.sh", build)
        self.assertIn("scripts/deps.sh build", build)
        self.assertTrue(os.access(os.path.join(SRC, "scripts", "build.sh"), os.X_OK))

    def test_copied_files_exist(self):
        for lines in self.stages.values():
            for line in lines:
                m = re.match(r"COPY\s+(?!--from)(.+)\s+(\S+)$", line)
                if not m:
                    continue
                for src in m.group(1).split():
                    if src != ".":
                        self.assertTrue(os.path.exists(os.path.join(SRC, src)), src)

    def test_non_root_and_healthcheck(self):
        base = " ".join(self.stages["base"])
        m = re.search(r"\bUSER\s+(\d+)(?::(\d+))?", base)
        self.assertIsNotNone(m, "USER must be numeric for runAsNonRoot")
        self.assertNotEqual(m.group(1), "0")
        for stage in ("sim", "runtime"):
            self.assertFalse([l for l in self.stages[stage] if l.startswith("USER")],
                             stage + " must not switch user back")
        runtime = " ".join(self.stages["runtime"])
        self.assertRegex(runtime, r'HEALTHCHECK .*CMD \["telematics2mqtt", "--healthcheck"\]')
        self.assertIn('ENTRYPOINT ["telematics2mqtt"]', runtime)
        self.assertNotRegex(runtime, r"\bENV\s+T2M_ACCESS_TOKEN\b", "no secret baked in")

    def test_runtime_has_every_library_the_binary_needs(self):
        """Each direct NEEDED library of the built daemon comes from a package the base stage
        installs, or from one that debian:12-slim already has."""
        if not BIN or not os.path.exists(BIN):
            self.fail("T2M_BIN (the built telematics2mqtt) is needed for this check")
        base = " ".join(self.stages["base"])
        installed = set(re.findall(r"\b(lib[a-z0-9.+-]+|ca-certificates|tzdata)\b", base))
        # In debian:12-slim already: libc, and libsystemd0 with its dependencies (apt needs it).
        slim = {"libc6", "libgcc-s1", "libsystemd0", "libcap2", "libgcrypt20", "libgpg-error0",
                "liblz4-1", "liblzma5", "libzstd1", "zlib1g"}
        out = subprocess.run(["readelf", "-d", BIN], capture_output=True, text=True, check=True)
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout)
        self.assertTrue(needed)
        cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        for lib in needed:
            if lib.startswith(("libasan", "libubsan")):
                continue  # sanitizer builds only
            m = re.search(r"^\s*" + re.escape(lib) + r" \(.*x86-64.*\) => (\S+)", cache, re.M)
            self.assertIsNotNone(m, lib)
            path = os.path.realpath(m.group(1))
            pkg = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
            if pkg.returncode != 0:  # usrmerge: dpkg knows /lib, the cache says /usr/lib
                pkg = subprocess.run(["dpkg", "-S", path.replace("/usr/lib/", "/lib/", 1)],
                                     capture_output=True, text=True)
            self.assertEqual(pkg.returncode, 0, path)
            name = pkg.stdout.split(":")[0]
            self.assertIn(name, installed | slim, f"{lib} is in {name}, which the image lacks")

    def test_dockerignore(self):
        with open(os.path.join(SRC, ".dockerignore"), encoding="utf-8") as f:
            entries = {l.strip() for l in f if l.strip() and not l.startswith("#")}
        self.assertTrue({".git", "build", "build-*"} <= entries)


class Compose(unittest.TestCase):
    def setUp(self):
        self.path = os.path.join(DOCKER, "compose.yaml")
        self.doc = load_yaml(self.path)
        self.services = self.doc["services"]
        self.stages = dockerfile_stages(os.path.join(DOCKER, "Dockerfile"))

    def local(self, rel):
        return os.path.normpath(os.path.join(DOCKER, compose_default(rel)))

    def test_services_and_profiles(self):
        self.assertEqual(set(self.services),
                         {"mosquitto", "refresh-token-seed", "telematics2mqtt", "sim", "node-red"})
        self.assertNotIn("profiles", self.services["mosquitto"])
        self.assertNotIn("profiles", self.services["telematics2mqtt"])
        self.assertEqual(self.services["sim"]["profiles"], ["demo"])
        self.assertEqual(self.services["node-red"]["profiles"], ["demo"])
        self.assertTrue(self.services["node-red"]["image"].startswith("nodered/node-red"))

    def test_builds_reference_real_stages(self):
        for name in ("telematics2mqtt", "refresh-token-seed", "sim"):
            b = self.services[name]["build"]
            ctx = self.local(b["context"])
            self.assertTrue(os.path.isfile(os.path.join(ctx, b["dockerfile"])), name)
            self.assertIn(b["target"], self.stages, name)
        self.assertEqual(self.services["sim"]["build"]["target"], "sim")
        cmd = self.services["sim"]["command"]
        self.assertEqual(cmd[cmd.index("--host") + 1], "0.0.0.0", "the bridge is another host")
        with open(self.path, encoding="utf-8") as f:
            header = f.read().split("name:", 1)[0]
        # The demo instructions in the header point the bridge at the sim's real port.
        self.assertIn("ws://sim:%s/" % cmd[cmd.index("--port") + 1], header)

    def test_every_referenced_file_exists(self):
        seen = 0
        for name, svc in self.services.items():
            for vol in svc.get("volumes", []):
                src = vol.split(":")[0]
                if src.startswith((".", "/")):
                    self.assertTrue(os.path.exists(self.local(src)), f"{name}: {src}")
                    seen += 1
                else:
                    self.assertIn(src, self.doc.get("volumes", {}), f"{name}: volume {src}")
        for name, sec in self.doc.get("secrets", {}).items():
            self.assertTrue(os.path.isfile(self.local(sec["file"])), f"secret {name}")
            seen += 1
        self.assertGreaterEqual(seen, 3)
        flows = [v for v in self.services["node-red"]["volumes"] if "flows.json" in v]
        self.assertTrue(flows and flows[0].split(":")[1] == "/data/flows.json")

    def test_bridge_hardening_and_token(self):
        b = self.services["telematics2mqtt"]
        self.assertTrue(b["read_only"])
        self.assertIn("/tmp", b["tmpfs"])
        self.assertEqual(b["cap_drop"], ["ALL"])
        self.assertIn("no-new-privileges:true", b["security_opt"])
        self.assertNotIn(str(b.get("user", "10001")).split(":")[0], ("0", "root"))
        env = b["environment"]
        self.assertEqual(env["T2M_ACCESS_TOKEN_FILE"], "/run/secrets/t2m_token")
        self.assertNotIn("T2M_ACCESS_TOKEN", env, "the token goes in a secret file")
        self.assertIn("t2m_token", b["secrets"])
        self.assertEqual(env["T2M_MQTT_URL"], "tcp://mosquitto:1883")
        self.assertEqual(b["depends_on"]["mosquitto"]["condition"], "service_healthy")

    def test_refresh_token_rotates_on_a_volume(self):
        """SPEC 6 (issue 22): the refresh token lives in a writable volume, seeded once from a
        secret before the bridge starts."""
        b, seed = self.services["telematics2mqtt"], self.services["refresh-token-seed"]
        state = b["environment"]["T2M_REFRESH_TOKEN_FILE"]
        self.assertEqual(os.path.dirname(state), "/var/lib/telematics2mqtt")
        vol = [v for v in b["volumes"] if v.split(":")[1] == "/var/lib/telematics2mqtt"]
        self.assertEqual(len(vol), 1)
        self.assertFalse(vol[0].endswith(":ro"))
        self.assertIn(vol[0].split(":")[0], self.doc["volumes"])
        self.assertIn(vol[0], seed["volumes"])
        self.assertEqual(b["depends_on"]["refresh-token-seed"]["condition"],
                         "service_completed_successfully")
        self.assertEqual(seed["entrypoint"][0], "/usr/libexec/telematics2mqtt/t2m-seed-refresh-token")
        self.assertEqual(seed["entrypoint"][2], state)
        self.assertIn("t2m_refresh_token", seed["secrets"])
        self.assertEqual(seed["entrypoint"][1], "/run/secrets/t2m_refresh_token")
        self.assertEqual(seed["user"], b["user"])

    def test_broker_on_loopback_only(self):
        """The demo broker has no password: it is published on 127.0.0.1 only."""
        for port in self.services["mosquitto"]["ports"]:
            self.assertTrue(str(port).startswith("127.0.0.1:"), port)

    def test_mosquitto_config(self):
        with open(os.path.join(DOCKER, "mosquitto.conf"), encoding="utf-8") as f:
            conf = f.read()
        self.assertRegex(conf, r"(?m)^listener 1883 0\.0\.0\.0$")
        self.assertRegex(conf, r"(?m)^persistence true$")
        mounts = self.services["mosquitto"]["volumes"]
        self.assertIn("./mosquitto.conf:/mosquitto/config/mosquitto.conf:ro", mounts)


class Kubernetes(unittest.TestCase):
    def setUp(self):
        self.kust = load_yaml(os.path.join(K8S, "kustomization.yaml"))
        self.docs = {}
        for res in self.kust["resources"]:
            for d in load_yaml_docs(os.path.join(K8S, res)):
                self.docs[(d["kind"], d["metadata"]["name"])] = d
        self.dep = self.docs[("Deployment", "telematics2mqtt")]
        self.pod = self.dep["spec"]["template"]["spec"]
        self.c = self.pod["containers"][0]

    def test_kustomization_resources_exist(self):
        self.assertEqual(set(self.kust["resources"]),
                         {"configmap.yaml", "secret.yaml", "deployment.yaml"})
        for res in self.kust["resources"]:
            self.assertTrue(os.path.isfile(os.path.join(K8S, res)), res)

    def test_probes_on_healthz(self):
        for probe in ("livenessProbe", "readinessProbe"):
            get = self.c[probe]["httpGet"]
            self.assertEqual(get["path"], "/healthz", probe)
            self.assertEqual(get["port"], 9780, probe)
        self.assertEqual(self.c["ports"][0]["containerPort"], 9780)

    def test_security_context(self):
        self.assertTrue(self.pod["securityContext"]["runAsNonRoot"])
        self.assertNotEqual(self.pod["securityContext"]["runAsUser"], 0)
        sc = self.c["securityContext"]
        self.assertTrue(sc["runAsNonRoot"])
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertFalse(self.pod["automountServiceAccountToken"])

    def test_resources(self):
        for kind in ("requests", "limits"):
            self.assertIn("cpu", self.c["resources"][kind])
            self.assertIn("memory", self.c["resources"][kind])

    def test_volumes_reference_defined_objects(self):
        vols = {v["name"]: v for v in self.pod["volumes"]}
        for m in self.c["volumeMounts"]:
            self.assertIn(m["name"], vols)
        cm = vols["config"]["configMap"]["name"]
        self.assertIn(("ConfigMap", cm), self.docs)
        sec = vols["token"]["secret"]["secretName"]
        self.assertIn(("Secret", sec), self.docs)
        self.assertIn("t2m_token", self.docs[("Secret", sec)]["stringData"])
        self.assertIn("t2m_refresh_token", self.docs[("Secret", sec)]["stringData"])
        self.assertEqual(vols["tmp"]["emptyDir"]["medium"], "Memory")
        claim = vols["state"]["persistentVolumeClaim"]["claimName"]
        self.assertIn(("PersistentVolumeClaim", claim), self.docs)

    def test_refresh_token_seeded_into_the_volume(self):
        init = self.pod["initContainers"][0]
        self.assertEqual(init["command"][0], "/usr/libexec/telematics2mqtt/t2m-seed-refresh-token")
        mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
        self.assertEqual(os.path.dirname(init["command"][2]), mounts["state"])
        self.assertEqual(os.path.dirname(init["command"][1]), mounts["token"])
        cmounts = {m["name"]: m for m in self.c["volumeMounts"]}
        self.assertFalse(cmounts["state"].get("readOnly", False))
        ref = re.search(r'refresh_token_file\s*=\s*"([^"]+)"', self.config_text()).group(1)
        self.assertEqual(ref, init["command"][2])
        self.assertEqual(os.path.dirname(ref), cmounts["state"]["mountPath"])

    def config_text(self):
        cm = self.docs[("ConfigMap", "telematics2mqtt-config")]
        return cm["data"]["telematics2mqtt.conf"]

    def test_config_matches_mounts(self):
        text = self.config_text()
        self.assertRegex(text, r'listen\s*=\s*"0\.0\.0\.0:9780"')
        mounts = {m["name"]: m["mountPath"] for m in self.c["volumeMounts"]}
        args = self.c["args"]
        self.assertEqual(args[0], "-c")
        self.assertEqual(os.path.dirname(args[1]), mounts["config"])
        self.assertEqual(os.path.basename(args[1]), "telematics2mqtt.conf")
        token = re.search(r'access_token_file\s*=\s*"([^"]+)"', text).group(1)
        self.assertEqual(token, os.path.join(mounts["token"], "t2m_token"))

    def test_config_passes_check_config(self):
        if not BIN or not os.path.exists(BIN):
            self.fail("T2M_BIN (the built telematics2mqtt) is needed for this check")
        with tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "telematics2mqtt.conf")
            tok = os.path.join(tmp, "token")
            with open(conf, "w", encoding="utf-8") as f:
                f.write(self.config_text())
            with open(tok, "w", encoding="utf-8") as f:
                f.write("header.payload.signature\n")
            os.chmod(tok, 0o600)
            ref = os.path.join(tmp, "refresh_token")
            with open(ref, "w", encoding="utf-8") as f:
                f.write("refresh\n")
            os.chmod(ref, 0o600)
            env = {k: v for k, v in os.environ.items() if not k.startswith("T2M_")}
            env["T2M_ACCESS_TOKEN_FILE"] = tok  # the mounted secret, elsewhere
            env["T2M_REFRESH_TOKEN_FILE"] = ref  # the volume, elsewhere
            r = subprocess.run([BIN, "-c", conf, "--check-config"], capture_output=True,
                               text=True, env=env, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("header.payload.signature", r.stdout + r.stderr)


class Systemd(unittest.TestCase):
    def setUp(self):
        self.sections = {}
        cur = None
        with open(UNIT, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                m = re.match(r"^\[(\w+)\]$", line)
                if m:
                    cur = m.group(1)
                    self.assertNotIn(cur, self.sections, f"line {n}: section repeated")
                    self.sections[cur] = {}
                    continue
                self.assertIsNotNone(cur, f"line {n}: key before any section")
                self.assertRegex(line, r"^[A-Za-z]+=", f"line {n}: not KEY=VALUE")
                k, v = line.split("=", 1)
                self.sections[cur].setdefault(k, []).append(v)

    def one(self, section, key):
        vals = self.sections[section].get(key)
        self.assertIsNotNone(vals, f"[{section}] {key} missing")
        return vals[-1]

    def test_sections(self):
        self.assertEqual(list(self.sections), ["Unit", "Service", "Install"])
        self.assertEqual(self.one("Install", "WantedBy"), "multi-user.target")

    def test_required_settings(self):
        want = {
            "Type": "notify",
            "WatchdogSec": "30",
            "DynamicUser": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "NoNewPrivileges": "yes",
            "PrivateTmp": "yes",
            "PrivateDevices": "yes",
            "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
            "LoadCredential": "t2m_token:/etc/telematics2mqtt/token",
            "Environment": "T2M_ACCESS_TOKEN_FILE=%d/t2m_token",
            "CapabilityBoundingSet": "",
            "Restart": "on-failure",
            "ExecReload": "/bin/kill -HUP $MAINPID",
            "StateDirectory": "telematics2mqtt",
            "EnvironmentFile": "-%t/telematics2mqtt/refresh.env",
            "ExecStartPre": "+/usr/libexec/telematics2mqtt/t2m-seed-refresh-token "
                            "/etc/telematics2mqtt/refresh_token %S/telematics2mqtt/refresh_token "
                            "%t/telematics2mqtt/refresh.env",
        }
        for k, v in want.items():
            self.assertEqual(self.one("Service", k), v, k)
        self.assertIn("@system-service", self.sections["Service"]["SystemCallFilter"])
        self.assertTrue(self.one("Service", "ExecStart").startswith("/usr/bin/telematics2mqtt "))

    def test_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        self.assertTrue(analyze, "systemd-analyze not found: install Debian's systemd "
                                 "(scripts/deps.sh does)")
        if not BIN or not os.path.exists(BIN):
            self.fail("T2M_BIN (the built telematics2mqtt) is needed for this check")
        with tempfile.TemporaryDirectory() as tmp:
            unit = os.path.join(tmp, "telematics2mqtt.service")
            with open(UNIT, encoding="utf-8") as f:
                text = f.read()
            # Verified as the package installs it, but with the binary of this build tree.
            text = text.replace("ExecStart=/usr/bin/telematics2mqtt", "ExecStart=" + BIN)
            text = text.replace("/usr/libexec/telematics2mqtt/t2m-seed-refresh-token", SEED)
            with open(unit, "w", encoding="utf-8") as f:
                f.write(text)
            r = subprocess.run([analyze, "verify", "--man=no", unit], capture_output=True,
                               text=True, timeout=60)
            # verify exits 0 on unknown keys too: any output at all is a failure.
            self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))


class KubernetesSharded(unittest.TestCase):
    """deploy/kubernetes/sharded/: a StatefulSet whose pods each serve their shard (SPEC 9)."""

    def setUp(self):
        d = os.path.join(K8S, "sharded")
        self.kust = load_yaml(os.path.join(d, "kustomization.yaml"))
        self.docs = {}
        for res in self.kust["resources"]:
            path = os.path.normpath(os.path.join(d, res))
            self.assertTrue(os.path.isfile(path), res)
            for doc in load_yaml_docs(path):
                self.docs[(doc["kind"], doc["metadata"]["name"])] = doc
        self.sts = self.docs[("StatefulSet", "telematics2mqtt")]
        self.c = self.sts["spec"]["template"]["spec"]["containers"][0]

    def test_shard_count_matches_replicas(self):
        env = {e["name"]: e for e in self.c["env"]}
        self.assertEqual(env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name")
        # Kubernetes expands $(POD_NAME) only when it is defined earlier in the list
        names = [e["name"] for e in self.c["env"]]
        self.assertLess(names.index("POD_NAME"), names.index("T2M_SHARD"))
        m = re.fullmatch(r"\$\(POD_NAME\)/(\d+)", env["T2M_SHARD"]["value"])
        self.assertTrue(m, env["T2M_SHARD"]["value"])
        self.assertEqual(int(m.group(1)), self.sts["spec"]["replicas"])
        self.assertGreater(self.sts["spec"]["replicas"], 1)

    def test_probes_pdb_and_shared_config(self):
        for probe in ("livenessProbe", "readinessProbe"):
            self.assertEqual(self.c[probe]["httpGet"]["path"], "/healthz")
        pdb = self.docs[("PodDisruptionBudget", "telematics2mqtt")]
        self.assertEqual(pdb["spec"]["maxUnavailable"], 1)
        labels = self.sts["spec"]["template"]["metadata"]["labels"]
        for k, v in pdb["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(k), v)
        vols = {v["name"]: v for v in self.sts["spec"]["template"]["spec"]["volumes"]}
        self.assertIn(("ConfigMap", vols["config"]["configMap"]["name"]), self.docs)
        self.assertIn(("Secret", vols["token"]["secret"]["secretName"]), self.docs)
        # one claim per pod for the rotating refresh token
        claims = [t["metadata"]["name"] for t in self.sts["spec"]["volumeClaimTemplates"]]
        self.assertEqual(claims, ["state"])
        mounts = {m["name"]: m["mountPath"] for m in self.c["volumeMounts"]}
        self.assertEqual(mounts["state"], "/var/lib/telematics2mqtt")
        init = self.sts["spec"]["template"]["spec"]["initContainers"][0]
        self.assertEqual(init["command"][0], "/usr/libexec/telematics2mqtt/t2m-seed-refresh-token")

    def test_pod_names_are_shards_the_bridge_accepts(self):
        """The pod names a StatefulSet gives (name-0 .. name-N-1) pass --check-config as
        T2M_SHARD, each with its own client id."""
        n = self.sts["spec"]["replicas"]
        with tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "t.conf")
            with open(conf, "w") as f:
                f.write('instances = ( { id = "a"; access_token = "t"; } );\n')
            for k in range(n):
                env = {"PATH": os.environ.get("PATH", ""),
                       "T2M_SHARD": "%s-%d/%d" % (self.sts["metadata"]["name"], k, n)}
                r = subprocess.run([BIN, "--check-config", "-c", conf], capture_output=True,
                                   text=True, env=env)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn('shard = "%d/%d";' % (k, n), r.stdout)
                self.assertIn('client_id = "telematics2mqtt-%d";' % k, r.stdout)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class SeedRefreshToken(unittest.TestCase):
    """deploy/scripts/t2m-seed-refresh-token: the first refresh token into the state directory,
    once; an existing (rotated) one is kept; the systemd environment file says whether there is
    one."""

    def run_seed(self, *args):
        return subprocess.run(["/bin/sh", SEED, *args], capture_output=True, text=True, timeout=30)

    def test_seed_once_then_keep(self):
        with tempfile.TemporaryDirectory() as tmp:
            seed, state = os.path.join(tmp, "seed"), os.path.join(tmp, "state", "refresh_token")
            envf = os.path.join(tmp, "refresh.env")
            os.mkdir(os.path.dirname(state))
            # no seed: nothing copied, an empty environment file, exit 0
            r = self.run_seed(seed, state, envf)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertFalse(os.path.exists(state))
            self.assertEqual(read(envf), "")
            self.assertIn("no refresh token", r.stderr)
            with open(seed, "w") as f:
                f.write("ref-0\n")
            r = self.run_seed(seed, state, envf)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(read(state), "ref-0\n")
            self.assertEqual(os.stat(state).st_mode & 0o777, 0o600)
            self.assertEqual(read(envf), "T2M_REFRESH_TOKEN_FILE=%s\n" % state)
            self.assertNotIn("ref-0", r.stderr)
            # the bridge rotated it: the seed never overwrites the newer token
            with open(state, "w") as f:
                f.write("ref-7\n")
            r = self.run_seed(seed, state)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(read(state), "ref-7\n")
            self.assertEqual(sorted(os.listdir(os.path.dirname(state))), ["refresh_token"])

    def test_missing_state_directory_fails(self):
        with tempfile.TemporaryDirectory() as tmp:
            seed = os.path.join(tmp, "seed")
            with open(seed, "w") as f:
                f.write("ref-0\n")
            r = self.run_seed(seed, os.path.join(tmp, "absent", "refresh_token"))
            self.assertEqual(r.returncode, 1)
            self.assertIn("not a writable directory", r.stderr)


class Scripts(unittest.TestCase):
    def test_shellcheck(self):
        sc = shutil.which("shellcheck")
        self.assertTrue(sc, "shellcheck not found: install Debian's shellcheck (scripts/deps.sh "
                            "does)")
        files = sorted(glob.glob(os.path.join(SRC, "scripts", "*.sh")))
        files += [os.path.join(SRC, ".ci", "run"), os.path.join(SRC, "tests", "deploy", "test_deb.sh"),
                  SEED]
        self.assertGreater(len(files), 5)
        r = subprocess.run([sc, "-x", *files], capture_output=True, text=True, cwd=SRC)
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_pyflakes(self):
        pf = shutil.which("pyflakes3")
        self.assertTrue(pf, "pyflakes3 not found: install Debian's pyflakes3 (scripts/deps.sh does)")
        files = sorted(glob.glob(os.path.join(SRC, "tests", "**", "*.py"), recursive=True))
        files += sorted(glob.glob(os.path.join(SRC, "bench", "**", "*.py"), recursive=True))
        self.assertGreater(len(files), 10)
        r = subprocess.run([pf, *files], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
