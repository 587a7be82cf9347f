"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for the status page
tests (issue 23). websocket-client (python3-websocket) speaks the protocol; nothing else.

Chromium may only reach loopback: every other address goes to a proxy on 127.0.0.1:9 that does not
exist, and its background services (updates, sync, metrics) are off."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import websocket

from harness import SLOW

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Browser:
    def __init__(self):
        if not os.path.exists(CHROMIUM):
            raise AssertionError("chromium not found (Debian package 'chromium', scripts/deps.sh)")
        self.profile = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--user-data-dir=" + self.profile.name, "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", "--remote-allow-origins=*",
             "--proxy-server=127.0.0.1:9", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-default-apps",
             "--disable-extensions", "--no-first-run", "--no-default-browser-check",
             "--metrics-recording-only", "--mute-audio", "--window-size=1280,800",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            start_new_session=True)  # its renderers and helpers share the group: close ends all
        port_file = os.path.join(self.profile.name, "DevToolsActivePort")
        deadline = time.monotonic() + 30 * SLOW
        while not (os.path.exists(port_file) and os.path.getsize(port_file) > 0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError("chromium did not open its DevTools port")
            time.sleep(0.05)
        with open(port_file) as f:
            port = int(f.readline())
        with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=10) as r:
            pages = [p for p in json.load(r) if p.get("type") == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30 * SLOW)
        self.n = 0
        self.console = []
        self.call("Runtime.enable")
        self.call("Page.enable")

    def call(self, method, **params):
        """One DevTools command; its result (events meanwhile are kept when useful)."""
        self.n += 1
        mid = self.n
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise AssertionError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if msg.get("method") == "Runtime.exceptionThrown":
                self.console.append(msg["params"]["exceptionDetails"].get("text"))

    def open(self, url, headers=None):
        if headers:
            self.call("Network.enable")
            self.call("Network.setExtraHTTPHeaders", headers=headers)
        self.call("Page.navigate", url=url)
        self.wait("document.readyState === 'complete'", 20, "the page to load")

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, timeout=10, what=None):
        """Polls a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            v = self.eval(expr)
            if v:
                return v
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for " + (what or expr))
            time.sleep(0.05)

    def screenshot(self, path):
        import base64
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait()
            # Chromium's helpers (renderers, crashpad) can outlive the main process for a moment
            # and still write into the profile: wait until the group is gone (or only zombies
            # nobody reaps are left), then remove the profile.
            for sig in (None, signal.SIGKILL):
                if sig and self._alive():
                    self._signal(sig)
                deadline = time.monotonic() + 10 * SLOW
                while self._alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
            self.profile.cleanup()

    def _alive(self):
        """A process of Chromium's group still runs (zombies do not count)."""
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid and fields[0] != "Z":
                return True
        return False

    def _signal(self, sig):
        """Signals Chromium's process group; False when none of it is left."""
        try:
            os.killpg(self.proc.pid, sig)
            return True
        except ProcessLookupError:
            return False
