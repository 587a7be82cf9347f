#!/usr/bin/python3
"""sim_protocol: telematics-sim speaks SPEC section 1 and misbehaves on request.
Usage: test_sim_protocol.py PATH/TO/telematics-sim"""

import json
import math
import os
import re
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import websocket  # noqa: E402
from simlib import Client, Sim, wait_for  # noqa: E402

SIM = None
TOKEN, INSTANCE = "good-jwt", "inst-1"
UUID_LOWER = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
UUID_UPPER = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")
CITIES = [(40.7128, -74.0060), (52.52, 13.405), (51.5074, -0.1278), (48.1351, 11.582)]
MISBEHAVIOUR_OFF = dict(close_after=0, abort_after=0, silent_after=0, no_auth_reply=0,
                        auth_error=0, auth_then_error=0, early_update=0, junk_every=0, fragment=0,
                        bad_tokens=0, rate=50, trip_seconds=0, park_seconds=0, partial_every=0)


def metres(a, b):
    dlat = (a[0] - b[0]) * 111320
    dlon = (a[1] - b[1]) * 111320 * math.cos(math.radians(a[0]))
    return math.hypot(dlat, dlon)


class SimTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim(SIM, "--token", TOKEN, "--instance", INSTANCE, "--devices", "3",
                      "--rate", "50", "--ping-interval", "0.2", "--auth-timeout", "0.5",
                      "--seed", "42")

    @classmethod
    def tearDownClass(cls):
        rc = cls.sim.stop()
        err = cls.sim.stderr_text()
        assert rc == 0, f"sim exited {rc}: {err}"
        assert "totals:" in err, err
        assert TOKEN not in err, "the access token leaked into the sim's log"

    def setUp(self):
        self.sim.set(**MISBEHAVIOUR_OFF)
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def client(self):
        c = Client(self.sim)
        self.clients.append(c)
        return c

    def authed(self, **kw):
        c = self.client()
        c.authenticate(TOKEN, INSTANCE, **kw)
        self.assertEqual(c.recv_json()["type"], "authenticated")
        self.assertEqual(c.recv_json()["type"], "welcome")
        self.assertEqual(c.recv_json()["type"], "subscribed")
        return c

    def test_handshake_and_updates(self):
        c = self.client()
        sent = c.authenticate(TOKEN, INSTANCE, client_id="pytest")
        self.assertEqual(c.recv_json(), {"type": "authenticated"})
        w = c.recv_json()
        self.assertEqual(w["type"], "welcome")
        self.assertEqual(w["instance_id"], INSTANCE)
        self.assertIsInstance(w["connection_id"], str)
        self.assertLess(abs(w["server_time"] - time.time()), 5)
        self.assertEqual(c.recv_json(), {"type": "subscribed", "topic": "instance:" + INSTANCE})

        last, tokens = {}, set()
        raw_count = 0
        while raw_count < 60:
            _, raw = c.recv_raw()
            m = json.loads(raw)
            raw = raw.decode()
            if m["type"] != "device_update":
                continue
            raw_count += 1
            self.assertEqual(set(m), {"type", "device_token", "track_token", "position"})
            self.assertRegex(m["device_token"], UUID_LOWER)
            self.assertRegex(m["track_token"], UUID_UPPER)
            p = m["position"]
            self.assertEqual(set(p), {"Latitude", "Longitude", "Speed", "Accuracy", "Timestamp",
                                      "Heading"})
            self.assertTrue(any(metres((p["Latitude"], p["Longitude"]), c0) < 30000
                                for c0 in CITIES), p)
            self.assertTrue(0 <= p["Speed"] <= 35, p)
            self.assertTrue(3 <= p["Accuracy"] <= 20, p)
            self.assertTrue(0 <= p["Heading"] < 360, p)
            self.assertIsInstance(p["Timestamp"], int)
            self.assertLess(abs(p["Timestamp"] - time.time()), 5)
            # A real feed prints few decimals: at most 6 for coordinates, 2 for speed.
            self.assertIsNone(re.search(r'"(Latitude|Longitude)":-?\d+\.\d{7,}', raw), raw)
            self.assertIsNone(re.search(r'"Speed":\d+\.\d{3,}', raw), raw)
            d = m["device_token"]
            tokens.add(d)
            now = time.monotonic()
            if d in last:
                (plat, plon, pt) = last[d]
                # Never faster than 35 m/s between two updates (plus rounding slack).
                self.assertLess(metres((p["Latitude"], p["Longitude"]), (plat, plon)),
                                35 * (now - pt) + 35 * 0.2 + 1)
            last[d] = (p["Latitude"], p["Longitude"], now)
        self.assertEqual(len(tokens), 3)
        st = self.sim.stats()
        self.assertEqual(st["last_auth"], sent)
        self.assertEqual(sorted(st["device_tokens"]), sorted(tokens))

    def test_connection_ids_unique(self):
        ids = set()
        for _ in range(3):
            c = self.client()
            c.authenticate(TOKEN, INSTANCE)
            ids.add(c.recv_type("welcome")["connection_id"])
        self.assertEqual(len(ids), 3)

    def test_ping_pong_counted(self):
        c = self.authed()
        before = self.sim.stats()["pongs"]
        c.recv_type("ping")
        stamp = int(time.time() * 1000)
        c.ws.send(json.dumps({"type": "pong", "timestamp": stamp}))
        st = wait_for(lambda: (s := self.sim.stats())["pongs"] > before and s, what="pong count")
        self.assertEqual(st["last_pong_timestamp"], stamp)

    def expect_error(self, c, code):
        m = c.recv_type("error")
        self.assertEqual(m["code"], code)
        self.assertIsInstance(m["message"], str)
        self.assertEqual(c.expect_closed()[0], "close")
        return m

    def test_wrong_token_401(self):
        c = self.client()
        c.authenticate("expired-jwt", INSTANCE)
        self.assertEqual(self.expect_error(c, 401)["message"], "JWT Token Expired")

    def test_unknown_instance_404(self):
        c = self.client()
        c.authenticate(TOKEN, "no-such-instance")
        self.expect_error(c, 404)

    def test_auth_timeout_408(self):
        c = self.client()
        self.expect_error(c, 408)

    def test_auth_error_switch(self):
        for code in (403, 503):
            self.sim.set(auth_error=code)
            c = self.client()
            c.authenticate(TOKEN, INSTANCE)
            self.expect_error(c, code)

    def test_auth_then_error_switch(self):
        self.sim.set(auth_then_error=401)
        c = self.client()
        c.authenticate(TOKEN, INSTANCE)
        self.assertEqual(c.recv_json()["type"], "authenticated")
        self.expect_error(c, 401)

    def test_early_update_switch(self):
        self.sim.set(early_update=1)
        c = self.client()
        c.authenticate(TOKEN, INSTANCE)
        first = c.recv_json()
        self.assertEqual((first["type"], first["device_token"]), ("device_update", "early-device"))
        self.assertEqual(c.recv_json()["type"], "authenticated")

    def test_invalid_json_from_client_400(self):
        c = self.client()
        c.ws.send("{not json")
        self.assertEqual(c.recv_type("error")["code"], 400)

    def test_token_file_rotation(self):
        with tempfile.NamedTemporaryFile("w", delete=False) as f:
            f.write("first-token\n")
        try:
            with Sim(SIM, "--token-file", f.name, "--rate", "0") as sim:
                c = Client(sim)
                c.authenticate("first-token", "any")
                self.assertEqual(c.recv_json()["type"], "authenticated")
                c.close()
                with open(f.name, "w") as g:
                    g.write("\n  second-token  \n")
                c = Client(sim)
                c.authenticate("first-token", "any")
                self.assertEqual(c.recv_type("error")["code"], 401)
                c.close()
                c = Client(sim)
                c.authenticate("second-token", "any")
                self.assertEqual(c.recv_json()["type"], "authenticated")
                c.close()
        finally:
            os.unlink(f.name)

    def test_fragment_mode(self):
        self.sim.set(fragment=7)
        c = self.authed()
        # Raw frames: the first is TEXT without FIN, then continuations of at most 7 bytes.
        c.ws.settimeout(10)
        frames = []
        while True:
            f = c.ws.recv_frame()
            if f.opcode in (websocket.ABNF.OPCODE_PING, websocket.ABNF.OPCODE_PONG):
                continue
            frames.append(f)
            if f.fin and len(frames) > 1:
                break
            if f.fin:
                frames = []
        self.assertEqual(frames[0].opcode, websocket.ABNF.OPCODE_TEXT)
        self.assertFalse(frames[0].fin)
        for f in frames[1:]:
            self.assertEqual(f.opcode, websocket.ABNF.OPCODE_CONT)
        self.assertTrue(all(len(f.data) <= 7 for f in frames))
        msg = json.loads(b"".join(f.data for f in frames))
        self.assertIn(msg["type"], ("device_update", "ping"))
        # And the library's own reassembly yields whole messages.
        m = c.recv_type("device_update")
        self.assertIn("position", m)

    def test_control_send(self):
        c = self.authed()
        text = '{"type":"device_update","device_token":"a/b+#","position":{"Latitude":1.5}}'
        status, body = self.sim.control("send", json=text)
        self.assertEqual(status, 200)
        self.assertGreaterEqual(body["sent_to"], 1)
        seen = wait_for(lambda: c.recv_raw()[1] == text.encode(), what="injected message")
        self.assertTrue(seen)

    def test_close_after(self):
        self.sim.set(close_after=3)
        c = self.authed()
        n = 0
        kind = None
        try:
            while True:
                m = c.recv_json()
                n += m["type"] == "device_update"
        except websocket.WebSocketConnectionClosedException:
            kind = "closed"
        self.assertEqual(kind, "closed")
        self.assertEqual(n, 3)
        self.assertEqual(c.close_code, 1000)

    def test_abort_after_resets(self):
        self.sim.set(abort_after=2)
        c = self.authed()
        with self.assertRaises(ConnectionResetError):
            for _ in range(100):
                c.recv_json()

    def test_silent_after(self):
        self.sim.set(silent_after=2)
        c = self.authed()
        self.assertEqual(c.recv_type("device_update")["type"], "device_update")
        c.recv_type("device_update")
        with self.assertRaises(websocket.WebSocketTimeoutException):
            c.recv_raw(timeout=1.0)  # pings every 0.2 s would arrive if not silent

    def test_no_auth_reply(self):
        self.sim.set(no_auth_reply=1)
        c = self.client()
        c.authenticate(TOKEN, INSTANCE)
        with self.assertRaises(websocket.WebSocketTimeoutException):
            c.recv_raw(timeout=1.0)  # neither authenticated nor the 0.5 s 408

    def test_junk_every(self):
        self.sim.set(junk_every=2, rate=200)
        c = self.authed()
        bad, binary, good = 0, 0, 0
        for _ in range(40):
            op, data = c.recv_raw()
            if op == websocket.ABNF.OPCODE_BINARY:
                binary += 1
                continue
            try:
                m = json.loads(data)
                ok = isinstance(m, dict) and isinstance(m.get("device_token"), str) and \
                    isinstance(m.get("position"), dict) and \
                    isinstance(m["position"].get("Speed"), float)
            except (ValueError, UnicodeDecodeError, RecursionError):
                ok = False
            good += ok
            bad += not ok
        self.assertGreaterEqual(binary, 1)
        self.assertGreaterEqual(bad, 10)
        self.assertGreaterEqual(good, 15)

    def test_bad_tokens(self):
        self.sim.set(bad_tokens=1, rate=200)
        c = self.authed()
        seen = set()
        for _ in range(60):
            m = c.recv_json()
            if m["type"] == "device_update":
                seen.add(m["device_token"])
        self.assertTrue({"a/b", "+", "#", "$SYS", "../x", ""} & seen, seen)
        self.assertTrue(any(len(t) == 300 for t in seen) or len(seen) >= 8, seen)

    def test_trips_parking_and_partial_updates(self):
        """Trips with a start and an end (a new track_token each), parked periods with no
        updates, and updates that lack fields now and then."""
        self.sim.set(trip_seconds=0.3, park_seconds=0.5, partial_every=3)
        c = self.authed()
        tok = self.sim.stats()["device_tokens"][0]
        tracks, kinds, last_ts, gap = [], set(), None, 0.0
        deadline = time.monotonic() + 20
        while (len(tracks) < 3 or len(kinds) < 4 or gap < 0.4) and time.monotonic() < deadline:
            u = c.recv_type("device_update")
            if u["device_token"] != tok:
                continue
            now = time.monotonic()
            if not tracks or tracks[-1] != u["track_token"]:
                if tracks and last_ts is not None:
                    gap = max(gap, now - last_ts)  # the parked time between two trips
                tracks.append(u["track_token"])
            last_ts = now
            p = u["position"]
            if "Speed" not in p:
                kinds.add("no speed")
            if "Accuracy" not in p:
                kinds.add("no accuracy")
            if "Latitude" not in p:
                kinds.add("no coordinates")
            if "Timestamp" not in p:
                kinds.add("no timestamp")
        self.assertGreaterEqual(len(set(tracks)), 3, tracks)
        self.assertEqual(len(set(tracks)), len(tracks), "a trip's token never comes back")
        self.assertEqual(kinds, {"no speed", "no accuracy", "no coordinates", "no timestamp"})
        self.assertGreaterEqual(gap, 0.4)

    def test_single_device_mode(self):
        tok = self.sim.stats()["device_tokens"][1]
        c = self.authed(device_token=tok)
        for _ in range(5):
            self.assertEqual(c.recv_type("device_update")["device_token"], tok)
        c2 = self.authed(device_token="my-own-device")
        self.assertEqual(c2.recv_type("device_update")["device_token"], "my-own-device")

    def test_drop(self):
        c = self.authed()
        c.recv_type("device_update")
        status, body = self.sim.control("drop")
        self.assertEqual(status, 200)
        self.assertGreaterEqual(body["dropped"], 1)
        self.assertIn(c.expect_closed()[0], ("reset", "eof"))

    def test_control_errors(self):
        self.assertEqual(self.sim.control("set", nonsense=1)[0], 400)
        self.assertEqual(self.sim.control("set", rate="fast")[0], 400)
        self.assertEqual(self.sim.control("set", auth_error=402)[0], 400)
        self.assertEqual(self.sim.control("nope")[0], 404)
        st = self.sim.stats()
        for k in ("connections", "active", "authenticated", "updates_sent", "pongs",
                  "last_pong_timestamp", "last_auth"):
            self.assertIn(k, st)


class HostileHandshakes(unittest.TestCase):
    """--handshake MODE: a server that misbehaves before or during the upgrade."""

    REQUEST = ("GET /realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()

    def exchange(self, mode, *args, wait=0.5):
        """What the server sends for one upgrade request, read until it closes or stays silent
        for `wait` s, and whether it closed."""
        import socket
        with Sim(SIM, "--handshake", mode, *args) as sim:
            s = socket.create_connection(("127.0.0.1", sim.port), timeout=wait)
            s.sendall(self.REQUEST)
            data, closed = b"", False
            while True:
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                data += chunk
            s.close()
            wait_for(lambda: "hostile connection 1 (%s)" % mode in sim.stderr_text(), 5,
                     "the connection reported")
            return data, closed

    def test_silent(self):
        self.assertEqual(self.exchange("silent"), (b"", False))

    def test_half_status(self):
        data, closed = self.exchange("half-status")
        self.assertEqual((data, closed), (b"HTTP/1.1 10", False))

    def test_redirect(self):
        data, closed = self.exchange("redirect", "--redirect-to", "ws://127.0.0.1:9/x")
        self.assertTrue(data.startswith(b"HTTP/1.1 302 Found\r\n"), data)
        self.assertIn(b"\r\nLocation: ws://127.0.0.1:9/x\r\n", data)
        self.assertTrue(closed)

    def test_extension(self):
        data, _ = self.exchange("extension")
        self.assertTrue(data.startswith(b"HTTP/1.1 101 "), data)
        self.assertIn(b"Sec-WebSocket-Extensions: permessage-deflate", data)
        # RFC 6455's own example key and accept value
        self.assertIn(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", data)

    def test_rsv1(self):
        data, _ = self.exchange("rsv1")
        head, frame = data.split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
        self.assertNotIn(b"Extensions", head)
        self.assertEqual(frame[0], 0xC1)  # FIN + RSV1 + text

    def test_reset(self):
        self.assertTrue(self.exchange("reset")[1])

    def test_unknown_mode(self):
        import subprocess
        r = subprocess.run([SIM, "--handshake", "bogus"], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 2)


class BenchModes(unittest.TestCase):
    def test_blast_and_stamp_ms(self):
        with Sim(SIM, "--blast", "2000", "--devices", "7", "--stamp-ms", "--rate", "0") as sim:
            c = Client(sim)
            c.authenticate("t", "i")
            c.recv_type("subscribed")
            last = {}
            for _ in range(2000):
                m = c.recv_type("device_update")
                ts = m["position"]["Timestamp"]
                self.assertGreater(ts, 1e11)
                self.assertGreaterEqual(ts, last.get(m["device_token"], 0))
                last[m["device_token"]] = ts
            self.assertEqual(len(last), 7)
            c.close()
            wait_for(lambda: sim.stats()["blasts_done"] == 1, what="blast done")
            wait_for(lambda: "blast of 2000 updates" in sim.stderr_text(), what="blast log")

    def test_cli_errors(self):
        import subprocess
        for args in (["--rate", "x"], ["--auth-error", "402"], ["--bogus"], ["--tls-cert", "a"]):
            r = subprocess.run([SIM, *args], capture_output=True, timeout=10)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr, args)
        r = subprocess.run([SIM, "--help"], capture_output=True, timeout=10, text=True)
        self.assertEqual(r.returncode, 0)
        for opt in ("--port", "--token-file", "--fragment", "--blast", "--stamp-ms"):
            self.assertIn(opt, r.stdout)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    SIM = sys.argv.pop(1)
    unittest.main(verbosity=2)
