// telematics2mqtt status page: the fleet from GET /api/events (Server-Sent Events). No framework,
// no build step. Every value is shown as text (textContent), never as HTML: names are user input.
"use strict";
(function () {
  const devices = new Map(); // "instance/device" -> {data, row, marker}
  const params = new URLSearchParams(location.search);
  // Map tiles come from the user's browser (OpenStreetMap by default); ?tiles=off shows the
  // markers on a plain background, as when the tiles cannot be reached.
  const tiles = params.get("tiles") || "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
  let map = null, fitted = false;
  if (window.L) {
    map = L.map("map", { worldCopyJump: true }).setView([20, 0], 2);
    if (tiles !== "off")
      L.tileLayer(tiles, { maxZoom: 19, attribution: "© OpenStreetMap contributors" }).addTo(map);
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function num(v, digits) {
    return typeof v === "number" ? v.toFixed(digits) : "";
  }
  function key(d) { return d.instance_id + "/" + d.device_token; }
  // "2026-12-07T12:49:05.355Z" (or Unix seconds / ms) as the browser's local time of day
  function when(v) {
    if (v === undefined || v === null) return "";
    const t = typeof v === "number" ? new Date(v > 1e11 ? v : v * 1000) : new Date(String(v));
    return isNaN(t.getTime()) ? String(v) : t.toLocaleTimeString();
  }

  function tripText(t) {
    if (!t) return "";
    const dist = typeof t.distance === "number" ? num(t.distance, 2) + " " + (t.distance_unit || "") : "";
    return (t.state === "driving" ? "open, " : "ended, ") + dist;
  }

  function render(d) {
    const k = key(d);
    let e = devices.get(k);
    if (!e) {
      const row = document.createElement("tr");
      row.dataset.key = k;
      for (let i = 0; i < 6; i++) row.appendChild(el("td"));
      document.querySelector("#devices tbody").appendChild(row);
      e = { row: row, marker: null };
      devices.set(k, e);
    }
    e.data = d;
    const c = e.row.children;
    c[0].textContent = d.name || d.device_token;
    c[0].title = d.device_token;
    c[1].textContent = d.instance_id;
    c[2].textContent = when(d.last_seen);
    c[2].title = d.last_seen !== undefined ? String(d.last_seen) : "";
    c[3].textContent = typeof d.speed === "number" ? num(d.speed, 1) + " " + (d.speed_unit || "") : "";
    c[4].textContent = d.zone || "";
    c[5].textContent = tripText(d.trip);
    e.row.className = d.driving ? "driving" : "";
    if (map && typeof d.latitude === "number" && typeof d.longitude === "number") {
      const label = el("span", d.name || d.device_token);
      if (!e.marker) {
        e.marker = L.marker([d.latitude, d.longitude], { title: d.name || d.device_token, alt: k })
          .addTo(map);
        e.marker.bindTooltip(label);
      } else {
        e.marker.setLatLng([d.latitude, d.longitude]);
        e.marker.setTooltipContent(label);
        e.marker.options.title = d.name || d.device_token;
        const icon = e.marker.getElement();
        if (icon) icon.title = e.marker.options.title;
      }
    }
    document.getElementById("empty").hidden = devices.size > 0;
  }

  function remove(d) {
    const k = key(d), e = devices.get(k);
    if (!e) return;
    e.row.remove();
    if (e.marker) e.marker.remove();
    devices.delete(k);
    document.getElementById("empty").hidden = devices.size > 0;
  }

  function instance(i) {
    const box = document.getElementById("instances");
    let div = box.querySelector('[data-id="' + CSS.escape(i.id) + '"]');
    if (!div) {
      div = el("div", null, "instance");
      div.dataset.id = i.id;
      div.appendChild(el("span", i.id, "name"));
      div.appendChild(el("span", "", "badge"));
      box.appendChild(div);
    }
    const b = div.querySelector(".badge");
    b.textContent = i.state;
    b.className = "badge " + String(i.state).replace(/[^a-z_]/g, "");
    div.title = "since " + (i.since === undefined ? "?" : String(i.since)) +
      (i.token_expires !== undefined ? ", token expires " + String(i.token_expires) : "");
  }

  function fit() {
    if (!map || fitted) return;
    const pts = [];
    devices.forEach(function (e) { if (e.marker) pts.push(e.marker.getLatLng()); });
    if (pts.length) { map.fitBounds(L.latLngBounds(pts).pad(0.2), { maxZoom: 14 }); fitted = true; }
  }

  function state(s) {
    document.getElementById("version").textContent = s.version ? "v" + s.version : "";
    document.getElementById("instances").replaceChildren();
    (s.instances || []).forEach(instance);
    Array.from(devices.values()).forEach(function (e) { remove(e.data); });
    (s.devices || []).forEach(render);
    fit();
  }

  function live(on) {
    const b = document.getElementById("live");
    b.textContent = on ? "live" : "reconnecting…";
    b.className = "badge " + (on ? "on" : "off");
  }

  const es = new EventSource("api/events");
  es.onopen = function () { live(true); };
  es.onerror = function () { live(false); };
  es.addEventListener("state", function (ev) { state(JSON.parse(ev.data)); });
  es.addEventListener("device", function (ev) { render(JSON.parse(ev.data)); fit(); });
  es.addEventListener("removed", function (ev) { remove(JSON.parse(ev.data)); });
  es.addEventListener("instance", function (ev) { instance(JSON.parse(ev.data)); });
  window.t2m = { devices: devices, map: map }; // for scripts and tests
})();
