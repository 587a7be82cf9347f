"""The status page (SPEC 7, issue 23) in a real browser - Debian's headless Chromium over the
DevTools protocol - and over HTTP: every device in the table with one marker each, live updates
that move a marker without a reload, names shown as text, the live clients bounded, and the
password rules off loopback."""

import base64
import json
import os
import socket
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from browser import Browser  # noqa: E402
from harness import Bridge, Broker, Sim, Subscriber, bridge_conf, free_port, wait_for  # noqa: E402

TOKEN = "sEcReT-access-tok-93"
EVIL = "<script>window.pwned=1</script><img src=x onerror=window.pwned=2>"
T0 = int(time.time())


def update(dev, lat, lon, ts, speed=10.0):
    return {"type": "device_update", "device_token": dev, "track_token": "T-" + dev,
            "position": {"Latitude": lat, "Longitude": lon, "Speed": speed, "Timestamp": ts}}


def get(port, path, auth=None, host="127.0.0.1"):
    """(status, headers, body) of GET; errors are results."""
    req = urllib.request.Request("http://%s:%d%s" % (host, port, path))
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def open_events(port, rcvbuf=None):
    """A raw GET /api/events; (socket, status line)."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    head = b""
    while b"\r\n" not in head:
        chunk = s.recv(1)
        if not chunk:
            break
        head += chunk
    return s, head.decode(errors="replace").strip()


class Base(unittest.TestCase):
    sim_args = ("--rate", "0")
    listen_host = "127.0.0.1"
    http_extra = ""
    devices = ""

    def setUp(self):
        self.tmpdir = tempfile.TemporaryDirectory()
        self.tmp = self.tmpdir.name
        self.broker = Broker(self.tmp, extra="persistence false").start()
        self.sim = Sim(self.tmp, "--token", TOKEN, *self.sim_args).start()
        self.sub = Subscriber(self.broker.port)
        self.port = free_port()
        self.bridges = []
        self.browser = None

    def tearDown(self):
        if self.browser:
            self.browser.close()
        harness.stop_and_check(self, self.bridges,
                               (self.sub.close, self.sim.stop, self.broker.stop,
                                self.tmpdir.cleanup), secrets=(TOKEN,))

    def start_bridge(self):
        conf = bridge_conf(self.sim.url, self.broker.url, token=TOKEN,
                           http="%s:%d" % (self.listen_host, self.port),
                           http_extra=self.http_extra, extra=self.devices)
        b = Bridge(self.tmp, conf).start()
        self.bridges.append(b)
        wait_for(lambda: self.sim.stats()["authenticated_active"] >= 1, 15, "authenticated")
        return b

    def send_three(self):
        self.sim.send(update("d1", 52.37, 4.89, T0))
        self.sim.send(update("d2", 48.85, 2.35, T0))
        self.sim.send(update("d3", 51.50, -0.12, T0))
        wait_for(lambda: len(json.loads(get(self.port, "/api/state")[2])["devices"]) == 3, 10,
                 "3 devices in /api/state")


class TestStatusPage(Base):
    devices = 'devices = ( { token = "d1"; name = "%s"; } );' % EVIL

    def test_every_device_a_marker_live_without_reload_names_as_text(self):
        self.start_bridge()
        self.send_three()
        self.browser = br = Browser()
        br.open("http://127.0.0.1:%d/?tiles=off" % self.port)
        br.wait("document.querySelectorAll('#devices tbody tr').length === 3", 15, "3 rows")
        br.wait("document.querySelectorAll('#map .leaflet-marker-icon').length === 3", 10,
                "3 markers")
        self.assertEqual(br.eval("document.querySelector('#instances .badge').textContent"),
                         "subscribed")
        # a name is user input: text, never markup
        self.assertEqual(br.eval("document.querySelector('tr[data-key=\"inst1/d1\"] td')"
                                 ".textContent"), EVIL)
        self.assertIsNone(br.eval("window.pwned === undefined ? null : window.pwned"))
        self.assertEqual(br.eval("document.querySelectorAll('#devices img, #devices script, "
                                 "#map script, .leaflet-tooltip img').length"), 0)
        self.assertEqual(br.eval("window.t2m.devices.get('inst1/d1').marker.getElement().title"),
                         EVIL)
        # a new update moves its marker, and the row, without a reload
        br.eval("window.__same_page = 42")
        self.sim.send(update("d2", 45.76, 4.84, T0 + 5, speed=25.0))
        br.wait("(function(){var p = window.t2m.devices.get('inst1/d2').marker.getLatLng();"
                "return p.lat === 45.76 && p.lng === 4.84;})()", 10, "the marker to move")
        self.assertEqual(br.eval("window.__same_page"), 42)
        speed = br.eval("document.querySelector('tr[data-key=\"inst1/d2\"]').children[3]"
                        ".textContent")
        self.assertEqual(speed, "90.0 km/h")
        # the open trip with its distance
        trip = br.wait("document.querySelector('tr[data-key=\"inst1/d2\"]').children[5]"
                       ".textContent", 10, "the trip cell")
        self.assertTrue(trip.startswith("open, "), trip)
        # a removed device leaves the table and the map
        self.sub.client.publish("telematics/bridge/request/device/remove",
                                json.dumps({"instance": "inst1", "device": "d3"}), qos=1)
        br.wait("document.querySelectorAll('#map .leaflet-marker-icon').length === 2 && "
                "document.querySelectorAll('#devices tbody tr').length === 2", 10,
                "d3 removed from the page")
        self.assertEqual(br.console, [])
        # nothing secret on the page
        self.assertNotIn(TOKEN, br.eval("document.documentElement.outerHTML"))
        if os.environ.get("T2M_SCREENSHOT"):
            br.screenshot(os.environ["T2M_SCREENSHOT"])

    def test_api_state_and_event_stream(self):
        self.start_bridge()
        self.send_three()
        status, headers, body = get(self.port, "/api/state")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("application/json"))
        state = json.loads(body)
        self.assertEqual(state["instances"][0]["id"], "inst1")
        self.assertEqual(state["instances"][0]["state"], "subscribed")
        self.assertEqual(sorted(d["device_token"] for d in state["devices"]), ["d1", "d2", "d3"])
        self.assertEqual([d.get("name") for d in state["devices"] if d["device_token"] == "d1"],
                         [EVIL])
        self.assertNotIn(TOKEN, body)
        # the page and its files are small and come from the bridge, Leaflet from libjs-leaflet
        sizes = {}
        for path in ("/", "/app.js", "/style.css", "/leaflet/leaflet.js", "/leaflet/leaflet.css",
                     "/leaflet/images/marker-icon.png"):
            st, hd, b = get(self.port, path) if not path.endswith(".png") else (None, None, None)
            if path.endswith(".png"):
                with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path)) as r:
                    st, b = r.status, r.read()
            self.assertEqual(st, 200, path)
            sizes[path] = len(b)
        page = sizes["/"] + sizes["/app.js"] + sizes["/style.css"]
        self.assertLess(page, 16384, sizes)
        sys.stderr.write("status page: %d bytes of our own (%s), Leaflet %d bytes\n"
                         % (page, sizes, sizes["/leaflet/leaflet.js"]))
        # a stream: the state first, then each update as it is published
        s, line = open_events(self.port)
        try:
            self.assertEqual(line, "HTTP/1.1 200 OK")
            buf = b""
            while b"event: state" not in buf or not buf.endswith(b"\n\n"):
                buf += s.recv(65536)
            self.sim.send(update("d1", 52.38, 4.90, T0 + 1))
            while b"event: device" not in buf:
                buf += s.recv(65536)
            self.assertIn(b'"latitude":52.38', buf.split(b"event: device", 1)[1])
        finally:
            s.close()
        # at most 8 live clients; the 9th is told so
        socks = []

        def one_more():
            s, line = open_events(self.port)
            if line == "HTTP/1.1 200 OK":
                return s
            s.close()  # the stream closed above may not be gone yet
            return None
        try:
            for _ in range(8):
                socks.append(wait_for(one_more, 10, "a live client"))
            s, line = open_events(self.port)
            socks.append(s)
            self.assertEqual(line, "HTTP/1.1 503 Service Unavailable")
        finally:
            for s in socks:
                s.close()
        # closed clients free their places (a peer's close is noticed within a second)
        s = wait_for(one_more, 10, "a free place")
        s.close()


class TestSlowClient(Base):
    """A client that stops reading is dropped once 1 MiB waits for it; the others stay."""
    sim_args = ("--rate", "2000", "--devices", "200")

    def test_slow_client_dropped(self):
        b = self.start_bridge()
        slow, line = open_events(self.port, rcvbuf=4096)
        self.assertEqual(line, "HTTP/1.1 200 OK")
        try:
            wait_for(lambda: "fell 1024 KiB behind: dropped" in b.output(), 60,
                     "the slow client dropped")
            ok, line = open_events(self.port)
            self.assertEqual(line, "HTTP/1.1 200 OK")
            ok.close()
            self.assertEqual(get(self.port, "/healthz")[0], 200)
        finally:
            slow.close()


class TestPassword(Base):
    """Off loopback, / and /api/* need HTTP Basic authentication (admin); /healthz and
    /metrics stay open."""
    listen_host = "0.0.0.0"

    def setUp(self):
        super().setUp()
        self.pwfile = os.path.join(self.tmp, "ui_password")
        with open(self.pwfile, "w") as f:
            f.write("c0rrect horse\n")
        os.chmod(self.pwfile, 0o600)

    def test_no_password_configured_is_403(self):
        self.start_bridge()
        for path in ("/", "/app.js", "/leaflet/leaflet.js", "/api/state", "/api/events"):
            status, _, body = get(self.port, path)
            self.assertEqual(status, 403, path)
            self.assertIn("ui_password_file", body)
            self.assertEqual(get(self.port, path, auth="admin:anything")[0], 403, path)
        self.assertEqual(get(self.port, "/healthz")[0], 200)
        self.assertEqual(get(self.port, "/metrics")[0], 200)

    def test_basic_authentication(self):
        self.http_extra = 'ui_password_file = "%s";' % self.pwfile
        self.start_bridge()
        self.send_three_auth()
        for path in ("/", "/api/state"):
            status, headers, _ = get(self.port, path)
            self.assertEqual(status, 401, path)
            self.assertTrue(headers["WWW-Authenticate"].startswith("Basic realm="), headers)
            self.assertEqual(get(self.port, path, auth="admin:wrong")[0], 401, path)
            self.assertEqual(get(self.port, path, auth="root:c0rrect horse")[0], 401, path)
            self.assertEqual(get(self.port, path, auth="admin:c0rrect horse")[0], 200, path)
        self.assertEqual(get(self.port, "/healthz")[0], 200)
        self.assertEqual(get(self.port, "/metrics")[0], 200)
        body = get(self.port, "/api/state", auth="admin:c0rrect horse")[2]
        self.assertNotIn("c0rrect", body)
        # the page in a browser that sends the credentials
        self.browser = br = Browser()
        cred = base64.b64encode(b"admin:c0rrect horse").decode()
        br.open("http://127.0.0.1:%d/?tiles=off" % self.port,
                headers={"Authorization": "Basic " + cred})
        br.wait("document.querySelectorAll('#map .leaflet-marker-icon').length === 3", 15,
                "3 markers behind the password")

    def send_three_auth(self):
        for dev, lat in (("d1", 1.0), ("d2", 2.0), ("d3", 3.0)):
            self.sim.send(update(dev, lat, lat, T0))
        wait_for(lambda: len(json.loads(get(self.port, "/api/state",
                                            auth="admin:c0rrect horse")[2])["devices"]) == 3,
                 10, "3 devices")

    def test_ui_off(self):
        self.listen_host = "127.0.0.1"
        self.http_extra = "ui = false;"
        self.start_bridge()
        for path in ("/", "/api/state", "/api/events", "/leaflet/leaflet.js"):
            self.assertEqual(get(self.port, path)[0], 404, path)
        self.assertEqual(get(self.port, "/healthz")[0], 200)


if __name__ == "__main__":
    unittest.main()
