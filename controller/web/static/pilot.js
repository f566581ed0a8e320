// Pilot page: live offers for this station (countdown, sound, notification, flashing title; where an
// offer went when it ended), Accept and Decline; after Accept, the flight view: map, video, telemetry
// and every in-flight command (fly to, altitude, orbit, camera, hold, resume, return, land).
"use strict";

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["accepted", "launched", "on_scene", "returning"]);
const ENDED_OFFER = new Set(["declined", "expired", "aborted", "completed"]);
const missions = new Map();   // mission id -> latest view
const gone = new Map();       // mission id -> {html, at} (offers that ended without us accepting)
const endings = new Map();    // mission id -> the offer.ended event's data: why, and where the call went next
let api = null, stream = null, clockSkewMs = 0, me = null, uiConfig = null, stations = null;

// ArduCopter flight modes (custom_mode numbers) in words a pilot reads at a glance.
const MODE = {
  0: "STABILIZE", 2: "ALT HOLD", 3: "AUTO", 4: "GUIDED", 5: "LOITER", 6: "RTL", 7: "CIRCLE", 9: "LAND", 16: "POSHOLD",
  17: "BRAKE", 21: "SMART RTL",
};
const MODE_MEANS = {
  3: "flying its mission or search sweep", 4: "flying to a point or holding there", 5: "holding position", 6: "flying home",
  7: "orbiting a point", 9: "landing", 17: "stopping",
};

// --- sign-in ------------------------------------------------------------------------------------

function signedIn(token) {
  api = new ApiClient(token);
  return api.call("GET", "/api/v1/me").then((who) => {
    if (who.role !== "pilot") throw new Error("this page is for pilot tokens");
    me = who;
    sessionStorage.setItem("pilotToken", token);
    $("signin").hidden = true; $("board").hidden = false;
    $("station").textContent = "· " + who.station_id;
    $("sound").hidden = alarm.ready();
    stream = api.stream({}, onEvent, (up) => {
      $("link").textContent = up ? "live" : "offline";
      $("link").className = "pill " + (up ? "live" : "down");
      streamUp = up;
    });
  });
}
let streamUp = false;

async function loadMissions() {
  const list = await api.call("GET", "/api/v1/missions?state=offered&state=accepted&state=launched&state=on_scene&state=returning");
  for (const m of list) upsert(m);
  render();
  const wanted = sessionStorage.getItem("flightMission");
  if (wanted && !flight && missions.has(wanted) && ACTIVE.has(missions.get(wanted).state)) openFlight(wanted);
}

function upsert(m) {
  const old = missions.get(m.id);
  if (!old || (m.updated_at || "") >= (old.updated_at || "")) missions.set(m.id, Object.assign({}, old, m));
}

// --- the event stream ---------------------------------------------------------------------------

function onEvent(ev) {
  if (ev.type === "hello") { loadMissions().catch(showError); return; }
  if (ev.ts) clockSkewMs = Date.parse(ev.ts) - Date.now();
  const d = ev.data || {};
  if (ev.type === "offer.ended" && d.mission_id) {
    endings.set(d.mission_id, d);
    const m = missions.get(d.mission_id);
    if (m && (gone.has(m.id) || m.state === "offered")) {
      if (m.state === "offered") upsert({ ...m, state: d.outcome, reason: d.reason, updated_at: ev.ts });
      offerEnded(ev.type, missions.get(d.mission_id));
      render();
    }
    return;
  }
  if (ev.mission_id && d.id === ev.mission_id) {
    const before = missions.get(d.id);
    upsert(d);
    if (before && before.state === "offered" && d.state !== "offered" && !ACTIVE.has(d.state)) offerEnded(ev.type, missions.get(d.id));
    render();
    if (flight && flight.missionId === d.id) flightMissionChanged();
  }
  if (!flight) return;
  if (ev.type === "drone.telemetry" && d.drone_id === flight.droneId) onTelemetry(d);
  else if (ev.type === "drone.updated" && d.id === flight.droneId) { flight.drone = d; renderTelemetry(); }
  else if (ev.type === "video.feeds" && d.drone_id === flight.droneId) videoFeedsChanged(d.feeds || []);
  else if (ev.type === "control.changed" && d.drone_id === flight.droneId) { refreshControl(); logStep(controlChangeText(d), true); }
  else if (ev.type === "control.command" && d.drone_id === flight.droneId) controlCommandEvent(d);
  else if (ev.type === "mission.step" && d.mission_id === flight.missionId) logStep(`${d.step}${d.detail ? ": " + d.detail : ""}`, d.ok);
  else if ((ev.type === "mission.plan" || ev.type === "mission.route") && d.id === flight.missionId) drawRoute();
}

// --- offers: cards, countdown and the alarm -----------------------------------------------------

function remaining(m) { return (Date.parse(m.expires_at) - (Date.now() + clockSkewMs)) / 1000; }
function openOffers() {
  return [...missions.values()].filter((m) => m.state === "offered" && remaining(m) > -3)
    .sort((a, b) => (a.incident?.grade ?? 9) - (b.incident?.grade ?? 9) || a.expires_at.localeCompare(b.expires_at));
}
function offerTitle(m) {
  const inc = m.incident || {};
  return `Grade ${inc.grade} · ${CATEGORY_LABEL[inc.category] || inc.category || "incident"}`;
}
function offerWhere(m) {
  const inc = m.incident || {};
  return inc.address || (inc.lat != null ? `${inc.lat.toFixed(5)}, ${inc.lon.toFixed(5)}` : "");
}

function offerCard(m) {
  const inc = m.incident || {};
  const secs = remaining(m);
  return `<article class="card offer grade-${inc.grade}" data-mission="${m.id}">
    <div class="offer-top"><h2>${escapeHtml(offerTitle(m))}</h2>
      <div class="big-count"><span class="muted">answer in</span>
        <b class="countdown ${secs < 10 ? "low" : ""}" data-countdown="${m.id}">${Math.max(0, Math.ceil(secs))} s</b></div></div>
    <div class="where">${escapeHtml(offerWhere(m))}</div>
    ${inc.description ? `<p>${escapeHtml(inc.description)}</p>` : ""}
    <div class="facts">
      <div><span class="muted">distance</span><b>${fmtDistance(m.distance_m)}</b></div>
      <div><span class="muted">ETA</span><b>${fmtDuration(m.eta_s)}</b></div>
      <div><span class="muted">callers</span><b>${inc.callers ?? "–"}</b></div>
    </div>
    <div class="muted">Drone ${escapeHtml(m.drone_id)} · ${escapeHtml(m.id)}</div>
    <p class="actions">
      <button class="accept" data-act="accept" data-id="${m.id}">Accept</button>
      <button class="decline" data-act="decline" data-id="${m.id}">Decline</button>
    </p>
    <p class="result" data-offer-result="${m.id}" role="status"></p>
  </article>`;
}

function missionCard(m) {
  const inc = m.incident || {};
  return `<article class="card grade-${inc.grade}" data-mission="${m.id}">
    <div><span class="state" data-mission-state="${m.id}">${escapeHtml(m.state)}</span> · ${escapeHtml(m.id)} · drone ${escapeHtml(m.drone_id)}</div>
    <div class="muted">${escapeHtml(CATEGORY_LABEL[inc.category] || inc.category || "")} · ${escapeHtml(offerWhere(m))} · ${fmtDistance(m.distance_m)}</div>
    <p><button class="accept" data-fly="${m.id}">Open flight view</button></p>
  </article>`;
}

function render() {
  const offers = openOffers();
  const active = [...missions.values()].filter((m) => ACTIVE.has(m.state));
  // keep the cards that are already there (a button being pressed must not be replaced under the finger)
  const box = $("offers");
  const want = new Set(offers.map((m) => m.id));
  for (const el of [...box.children]) if (!want.has(el.dataset.mission)) el.remove();
  for (const m of offers) {
    if (!box.querySelector(`[data-mission="${m.id}"]`)) {
      box.insertAdjacentHTML("beforeend", offerCard(m));
      alarm.offerArrived(m);
    }
  }
  $("empty").hidden = offers.length > 0;
  $("missions").innerHTML = active.map(missionCard).join("") || '<p class="muted">None in progress.</p>';
  $("offer-count").hidden = offers.length === 0;
  $("offer-count").textContent = offers.length;
  renderGone();
  alarm.update(offers);
}

function offerEnded(type, m) {
  alarm.offerGone(m.id);
  const to = passedTo(m);
  const why = m.state === "expired" ? `expired: ${m.reason || "no answer in time"}`
    : m.state === "declined" ? (m.decided_by && m.decided_by.startsWith("pilot:") ? "declined" : `declined by ${m.decided_by || "the system"}`)
    : `${m.state}${m.reason ? ": " + m.reason : ""}`;
  const html = `<b>${escapeHtml(offerTitle(m))}</b> (${escapeHtml(m.id)}, ${escapeHtml(offerWhere(m))}) ${escapeHtml(why)}. ${to}`;
  gone.set(m.id, { html, at: Date.now(), state: m.state });
}

// Who got the call next: the controller names the next drone and station on the ended offer.
function passedTo(m) {
  const e = endings.get(m.id);
  if (!e) return "The call goes to the next drone.";
  const n = e.next;
  if (n && (n.drone_id || n.station_id)) {
    return `Passed to <b>${escapeHtml(n.drone_id || "a drone")}</b>${n.station_id ? ` (station ${escapeHtml(n.station_id)})` : ""}.`;
  }
  if (e.queued) return "No other drone is free: the call waits in the queue.";
  return "The call was not passed on (it is closed or already covered).";
}

function renderGone() {
  const now = Date.now();
  for (const [id, g] of gone) if (now - g.at > 120_000) gone.delete(id);
  $("gone").innerHTML = [...gone].map(([id, g]) =>
    `<div class="gone ${g.state}" data-gone="${id}"><span>${g.html}</span><button class="ghost small" data-dismiss="${id}" aria-label="dismiss">OK</button></div>`).join("");
}

function tick() {
  for (const el of document.querySelectorAll("[data-countdown]")) {
    const m = missions.get(el.dataset.countdown);
    if (!m) continue;
    const secs = remaining(m);
    el.textContent = secs > 0 ? Math.ceil(secs) + " s" : "time up";
    el.classList.toggle("low", secs < 10);
  }
  if (openOffers().length !== $("offers").children.length) render();
  alarm.tick(openOffers());
  if (flight) renderLink();
}

async function act(action, id, button) {
  button.disabled = true;
  const out = document.querySelector(`[data-offer-result="${id}"]`);
  try {
    const m = await api.call("POST", `/api/v1/missions/${encodeURIComponent(id)}/${action}`, action === "decline" ? { reason: "declined on the pilot page" } : undefined);
    upsert(m);
    alarm.offerGone(id);
    render();
    if (action === "accept") openFlight(id);
  } catch (err) {
    if (out) { out.textContent = plainError(err); out.className = "result bad"; }
    button.disabled = false;
  }
}

// The alarm: a beep (WebAudio, unlocked by the sign-in tap or any first tap), a browser notification and
// a flashing tab title while an offer is open.
const alarm = {
  ctx: null, beeps: 0, notified: 0, notes: new Map(), lastBeep: 0, baseTitle: document.title, flash: false,
  ready() { return !!(this.ctx && this.ctx.state === "running"); },
  unlock() {
    try {
      if (!this.ctx) this.ctx = new (window.AudioContext || window.webkitAudioContext)();
      if (this.ctx.state !== "running") this.ctx.resume().then(() => { $("sound").hidden = true; }).catch(() => {});
    } catch (e) { /* no audio in this browser */ }
    if (this.ready()) $("sound").hidden = true;
  },
  askNotifications() {
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission().catch(() => {});
  },
  beep(urgent) {
    this.beeps++;
    if (!this.ctx || this.ctx.state !== "running") return;
    const t0 = this.ctx.currentTime;
    const tones = urgent ? [988, 784, 988, 784] : [880, 660, 880];
    tones.forEach((f, i) => {
      const o = this.ctx.createOscillator(), g = this.ctx.createGain();
      o.type = "square"; o.frequency.value = f;
      g.gain.setValueAtTime(0.0001, t0 + i * 0.18);
      g.gain.exponentialRampToValueAtTime(0.25, t0 + i * 0.18 + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.18 + 0.16);
      o.connect(g).connect(this.ctx.destination);
      o.start(t0 + i * 0.18); o.stop(t0 + i * 0.18 + 0.17);
    });
  },
  offerArrived(m) {
    if (this.notes.has(m.id)) return;
    this.notes.set(m.id, null);
    this.beep(m.incident?.grade <= 2); this.lastBeep = Date.now();
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        const n = new Notification(`Offer: ${offerTitle(m)}`, {
          body: `${offerWhere(m)} · ${fmtDistance(m.distance_m)} · answer within ${Math.max(0, Math.ceil(remaining(m)))} s`,
          tag: m.id, requireInteraction: true, renotify: true,
        });
        n.onclick = () => { window.focus(); n.close(); };
        this.notes.set(m.id, n);
        this.notified++;
      } catch (e) { /* notifications need a service worker on some platforms */ }
    }
  },
  offerGone(id) {
    const n = this.notes.get(id);
    if (n) n.close();
    this.notes.delete(id);
  },
  update(offers) { if (!offers.length) { document.title = this.baseTitle; this.flash = false; } },
  tick(offers) {
    if (!offers.length) { if (document.title !== this.baseTitle) document.title = this.baseTitle; return; }
    const now = Date.now();
    if (Math.floor(now / 700) % 2 === (this.flash ? 1 : 0)) return;
    this.flash = !this.flash;
    const m = offers[0], secs = Math.max(0, Math.ceil(remaining(m)));
    document.title = this.flash ? `🔴 OFFER ${secs} s · ${offerTitle(m)}` : `▶ ANSWER NOW (${secs} s) · pilot`;
    if (now - this.lastBeep > 5000) { this.lastBeep = now; this.beep(secs < 10); }
  },
};

// --- the flight view ----------------------------------------------------------------------------

let flight = null;  // {missionId, droneId, map, layers, tele, control, info, track, target, picked, viewer, kind}

async function openFlight(missionId) {
  const m = missions.get(missionId);
  if (!m) return;
  if (flight && flight.missionId === missionId) { showFlight(true); return; }
  closeFlight();
  sessionStorage.setItem("flightMission", missionId);
  flight = {
    missionId, droneId: m.drone_id, tele: null, drone: null, control: null, info: null, track: [], target: null,
    picked: null, viewer: null, kind: "visible", follow: true, lastTeleAt: 0, feeds: [], altTarget: null, steps: [], timer: null,
  };
  showFlight(true);
  $("f-mission").textContent = m.id;
  $("f-drone").textContent = m.drone_id;
  $("f-state").dataset.state = m.id;
  $("map-hint").hidden = false; $("map-hint").classList.remove("nudge");
  $("map-hint").textContent = "Tap the map to pick a point, then: Fly here · Orbit · Point camera";
  setupMap(m);
  flightMissionChanged();
  renderTelemetry();
  try {
    uiConfig = uiConfig || await api.call("GET", "/api/v1/ui-config");
    drawStatic();
  } catch (err) { logStep("map data: " + plainError(err), false); }
  try {
    stations = stations || await api.call("GET", "/api/v1/stations");
    drawStatic();
  } catch (err) { /* the home marker is a nicety */ }
  api.call("GET", `/api/v1/drones/${encodeURIComponent(m.drone_id)}`).then((d) => {
    if (!flight || flight.droneId !== d.id) return;
    flight.drone = d;
    if (!flight.tele) { pushTrack(d.lat, d.lon); moveDrone(d.lat, d.lon, null); flight.map.setView([d.lat, d.lon], 16); }
    renderTelemetry();
  }).catch(() => {});
  api.call("GET", `/api/v1/missions/${encodeURIComponent(m.id)}`).then((detail) => {
    if (!flight || flight.missionId !== detail.id) return;
    upsert(detail);
    for (const s of (detail.steps || []).slice(-8)) logStep(`${s.step}${s.detail ? ": " + s.detail : ""}`, !!s.ok, s.at);
    drawRoute();
  }).catch(() => {});
  refreshControl();
  refreshFlightInfo();
  refreshFeeds();
  flight.timer = setInterval(() => { refreshFlightInfo(); if (!flight.control || Date.now() - flight.controlAt > 10_000) refreshControl(); }, 2000);
}

function showFlight(on) {
  document.body.classList.toggle("flying", on);
  $("flight").hidden = !on;
  $("home").hidden = on;
  if (on && flight && flight.map) setTimeout(() => flight.map.invalidateSize(), 0);
}

function closeFlight() {
  if (!flight) return;
  clearInterval(flight.timer);
  if (flight.viewer) flight.viewer.close();
  if (flight.resize) flight.resize.disconnect();
  if (flight.map) flight.map.remove();
  flight = null;
}

function flightMissionChanged() {
  const m = missions.get(flight.missionId);
  if (!m) return;
  $("f-state").textContent = m.state.replace("_", " ");
  $("f-scene").textContent = `· ${offerTitle(m)} · ${offerWhere(m)}`;
  const search = !!m.plan;
  $("resume").firstChild.textContent = search ? "Resume sweep " : "Resume ";
  $("resume").title = search ? "Back to the search sweep where it left off" : "Give the drone back to the controller's on-scene behaviour";
  if (!ACTIVE.has(m.state) && m.state !== "offered") setResult("primary", `Mission ${m.state}${m.reason ? ": " + m.reason : ""}. Go back to the offers with the button at the top left.`, "info");
  drawScene();
}

// --- map ---

function setupMap(m) {
  const map = L.map("map", { zoomControl: true, attributionControl: false, keyboard: false }).setView([m.incident?.lat ?? 32.06, m.incident?.lon ?? 118.79], 15);
  L.control.scale({ imperial: false, position: "topleft" }).addTo(map);
  flight.map = map;
  flight.layers = {
    static: L.layerGroup().addTo(map),
    route: L.layerGroup().addTo(map),
    track: L.polyline([], { color: "#4fc3ff", weight: 3, opacity: 0.9 }).addTo(map),
    targetLine: L.polyline([], { color: "#ffd54a", weight: 2, dashArray: "6 6" }).addTo(map),
    target: null, picked: null, orbit: null, drone: null, scene: null, fence: null,
  };
  map.on("click", (e) => pickPoint(e.latlng.lat, e.latlng.lng));
  // the map follows the drone until the pilot moves it by hand; then a button brings it back
  map.on("dragstart", () => setFollow(false));
  map.getContainer().addEventListener("wheel", () => setFollow(false), { passive: true });
  // the grid changes size with the window (tablet turned round): keep the map filled and the drone in view
  flight.resize = new ResizeObserver(() => {
    map.invalidateSize();
    const d = flight && flight.layers.drone;
    if (d && flight.follow) map.panTo(d.getLatLng(), { animate: false });
  }).observe($("map"));
}

function setFollow(on) {
  if (!flight) return;
  flight.follow = on;
  $("recenter").hidden = on;
  const d = flight.layers.drone;
  if (on && d) flight.map.panTo(d.getLatLng());
}

function drawStatic() {
  if (!flight) return;
  const g = flight.layers.static;
  g.clearLayers();
  if (uiConfig?.tile_url && !flight.tiles) {
    flight.tiles = L.tileLayer(uiConfig.tile_url, { attribution: uiConfig.tile_attribution, maxZoom: 19 }).addTo(flight.map);
  }
  if (uiConfig?.nofly) {
    L.geoJSON(uiConfig.nofly, { style: { color: "#ff5c5c", weight: 2, fillColor: "#ff5c5c", fillOpacity: 0.18, dashArray: "4 4" } })
      .bindTooltip((layer) => `NO-FLY: ${escapeHtml(layer.feature.properties.name)}`, { sticky: true, className: "map-label nofly-label" }).addTo(g);
  }
  for (const s of stations || []) {
    const home = s.id === me.station_id;
    L.circleMarker([s.lat, s.lon], { radius: home ? 8 : 4, color: home ? "#7ee2a0" : "#8b9aab", weight: 2, fillOpacity: home ? 0.5 : 0.3 })
      .bindTooltip(home ? `HOME ${s.name}` : s.name, { permanent: home, direction: "right", className: "map-label" }).addTo(g);
  }
  const fence = flight.control?.limits?.geofence;
  if (fence) {
    L.circle([fence.lat, fence.lon], { radius: fence.radius_m, color: "#ffb74d", weight: 1, fill: false, dashArray: "10 8", interactive: false }).addTo(g);
  }
}

function drawScene() {
  const m = missions.get(flight.missionId);
  const inc = m?.incident;
  if (!inc || flight.layers.scene) return;
  flight.layers.scene = L.marker([inc.lat, inc.lon], {
    icon: L.divIcon({ className: "scene-icon", html: `<div class="scene g${inc.grade}">!</div>`, iconSize: [34, 34], iconAnchor: [17, 17] }),
    keyboard: false,
  }).bindTooltip("SCENE", { permanent: true, direction: "top", offset: [0, -16], className: "map-label" }).addTo(flight.map);
}

function drawRoute() {
  if (!flight) return;
  const m = missions.get(flight.missionId);
  const g = flight.layers.route;
  g.clearLayers();
  const route = flight.info?.route;
  if (flight.target && Array.isArray(route) && route.length === 2) {
    /* the line to the pilot's target is drawn by the target itself */
  } else if (Array.isArray(route) && route.length > 1) {
    L.polyline(route.map(ll), { color: "#b388ff", weight: 3, opacity: 0.9, dashArray: "2 8" }).addTo(g);
  } else if (m?.plan?.waypoints?.length) {
    const wps = m.plan.waypoints.map(ll);
    L.polyline(wps, { color: "#b388ff", weight: 2, opacity: 0.8 }).addTo(g);
    const done = Math.min(m.plan.done || 0, wps.length);
    if (done > 1) L.polyline(wps.slice(0, done), { color: "#5a4a80", weight: 4 }).addTo(g);
  } else if (m?.incident && stations) {
    const home = stations.find((s) => s.id === m.station_id);
    if (home) L.polyline([[home.lat, home.lon], [m.incident.lat, m.incident.lon]], { color: "#b388ff", weight: 2, dashArray: "2 8" }).addTo(g);
  }
}
function ll(p) { return Array.isArray(p) ? [p[0], p[1]] : [p.lat, p.lon]; }

function droneIcon(heading) {
  const rot = heading == null ? 0 : heading;
  return L.divIcon({
    className: "drone-icon",
    html: `<svg viewBox="-20 -20 40 40" width="40" height="40" style="transform:rotate(${rot}deg)"><circle r="17" fill="rgba(0,0,0,.35)"/>` +
      `<path d="M0,-16 L11,12 L0,6 L-11,12 Z" fill="#4fc3ff" stroke="#fff" stroke-width="2.5" stroke-linejoin="round"/></svg>`,
    iconSize: [40, 40], iconAnchor: [20, 20],
  });
}

function moveDrone(lat, lon, heading) {
  if (lat == null) return;
  if (!flight.layers.drone) {
    flight.layers.drone = L.marker([lat, lon], { icon: droneIcon(heading), keyboard: false, interactive: false, zIndexOffset: 1000 }).addTo(flight.map);
    flight.map.setView([lat, lon], Math.max(flight.map.getZoom(), 16));
  } else {
    flight.layers.drone.setLatLng([lat, lon]);
    if (heading != null && heading !== flight.lastHeading) flight.layers.drone.setIcon(droneIcon(heading));
  }
  flight.lastHeading = heading;
  if (flight.target) flight.layers.targetLine.setLatLngs([[lat, lon], [flight.target.lat, flight.target.lon]]);
  if (flight.follow !== false && !flight.map.getBounds().pad(-0.25).contains([lat, lon])) flight.map.panTo([lat, lon]);
}

function pushTrack(lat, lon) {
  const last = flight.track[flight.track.length - 1];
  if (last && Math.abs(last[0] - lat) < 1e-6 && Math.abs(last[1] - lon) < 1e-6) return;
  flight.track.push([lat, lon]);
  if (flight.track.length > 3000) flight.track.splice(0, flight.track.length - 3000);
  flight.layers.track.setLatLngs(flight.track);
}

function setTarget(t) {
  flight.target = t;
  if (flight.layers.target) { flight.layers.target.remove(); flight.layers.target = null; }
  if (flight.layers.orbit) { flight.layers.orbit.remove(); flight.layers.orbit = null; }
  if (!t) { flight.layers.targetLine.setLatLngs([]); return; }
  const label = t.kind === "orbit" ? `ORBIT ${Math.round(t.radius_m)} m ${t.direction === "ccw" ? "↺" : "↻"}` : `TARGET${t.alt_m != null ? " " + Math.round(t.alt_m) + " m" : ""}`;
  flight.layers.target = L.marker([t.lat, t.lon], {
    icon: L.divIcon({ className: "target-icon", html: '<div class="target"></div>', iconSize: [30, 30], iconAnchor: [15, 15] }), interactive: false,
  }).bindTooltip(label, { permanent: true, direction: "right", offset: [14, 0], className: "map-label target-label" }).addTo(flight.map);
  if (t.kind === "orbit" && t.radius_m) {
    flight.layers.orbit = L.circle([t.lat, t.lon], { radius: t.radius_m, color: "#ffd54a", weight: 2, fill: false, dashArray: "3 6", interactive: false }).addTo(flight.map);
  }
  const p = flight.layers.drone?.getLatLng();
  flight.layers.targetLine.setLatLngs(p ? [[p.lat, p.lng], [t.lat, t.lon]] : []);
}

function pickPoint(lat, lon) {
  flight.picked = { lat, lon };
  if (flight.layers.picked) flight.layers.picked.setLatLng([lat, lon]);
  else {
    flight.layers.picked = L.marker([lat, lon], {
      icon: L.divIcon({ className: "pick-icon", html: '<div class="picked"></div>', iconSize: [36, 36], iconAnchor: [18, 18] }), interactive: false,
    }).addTo(flight.map);
  }
  const here = flight.layers.drone?.getLatLng();
  let what = `Picked ${lat.toFixed(5)}, ${lon.toFixed(5)}`;
  if (here) what += ` · ${fmtDistance(distanceM([here.lat, here.lng], [lat, lon]))} ${compass(bearingDeg([here.lat, here.lng], [lat, lon]))} of the drone`;
  const zone = noflyAt(lat, lon);
  $("pick-what").innerHTML = escapeHtml(what) + (zone ? ` <span class="warn">inside no-fly zone ${escapeHtml(zone)}</span>` : "");
  $("pick").hidden = false;
  $("map-hint").hidden = true;
  setResult("pick", "", "");
}

function clearPick() {
  flight.picked = null;
  if (flight.layers.picked) { flight.layers.picked.remove(); flight.layers.picked = null; }
  $("pick").hidden = true;
}

function noflyAt(lat, lon) {
  for (const f of uiConfig?.nofly?.features || []) {
    const ring = f.geometry?.coordinates?.[0];
    if (ring && inRing(lon, lat, ring)) return f.properties?.name || f.properties?.id;
  }
  return null;
}
function inRing(x, y, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i], [xj, yj] = ring[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// --- telemetry ---

function onTelemetry(d) {
  flight.tele = d;
  flight.lastTeleAt = Date.now();
  if (d.lat != null) { pushTrack(d.lat, d.lon); moveDrone(d.lat, d.lon, d.heading_deg); }
  renderTelemetry();
}

function altNow() { return flight.tele?.alt_rel_m ?? flight.drone?.alt_m ?? null; }

function renderTelemetry() {
  if (!flight) return;
  const t = flight.tele || {}, info = flight.info || {};
  const alt = altNow();
  $("t-alt").textContent = alt == null ? "–" : `${Math.round(alt)} m`;
  const want = flight.altTarget;
  if (want != null && alt != null && Math.abs(want - alt) > 2) $("t-alt").textContent += ` → ${Math.round(want)}`;
  $("t-speed").textContent = t.ground_speed_ms == null ? "–" : `${t.ground_speed_ms.toFixed(1)} m/s`;
  const batt = t.battery_pct ?? flight.drone?.battery_pct;
  const need = pick(info, ["return_need_pct"]);
  const reserve = 15;  // the page's own margin on top of the battery the way home takes
  $("t-batt").textContent = batt == null ? "–" : `${Math.round(batt)} %`;
  const lowBatt = batt != null && need != null && batt < need + reserve;
  $("t-batt").parentElement.className = batt == null ? "" : lowBatt || batt < 25 ? "bad" : batt < 40 ? "warn" : "";
  const rtime = pick(info, ["return_s"]);
  $("t-rth").textContent = rtime == null && need == null ? "–" : `${rtime == null ? "" : fmtDuration(rtime)}${need == null ? "" : ` · ${Math.round(need)} %`}`;
  $("t-rth").title = info.return_to ? `the way home goes to ${info.return_to}` : "";
  $("t-rth").parentElement.className = lowBatt ? "bad" : "";
  $("t-mode").title = MODE_MEANS[t.mode] || "";
  $("t-mode").textContent = t.mode == null ? (flight.drone?.state || "–") : (MODE[t.mode] || `mode ${t.mode}`) + (t.armed === false ? " · disarmed" : "");
  $("t-hdg").textContent = t.heading_deg == null ? "–" : `${Math.round(t.heading_deg)}° ${compass(t.heading_deg)}`;
  if (!$("alt-set").matches(":focus") && (want ?? alt) != null) $("alt-set").value = Math.round(want ?? alt);
  const pitch = t.gimbal_pitch_deg ?? info.gimbal_pitch_deg;  // what the gimbal reports, beside the slider's request
  $("pitch-now").textContent = pitch == null ? "" : `(camera at ${Math.round(pitch)}°)`;
  renderLink();
}

function renderLink() {
  const info = flight.info || {};
  // the vehicle's last heartbeat as the controller saw it (aged since we asked), else our last telemetry event
  let age = info.heartbeat_age_s != null ? info.heartbeat_age_s + (Date.now() - flight.infoAt) / 1000 : null;
  const teleAge = flight.lastTeleAt ? (Date.now() - flight.lastTeleAt) / 1000 : null;
  if (age == null || (teleAge != null && teleAge < age)) age = teleAge;
  const up = info.link_up !== false;
  let text, cls;
  if (!streamUp) { text = "page offline"; cls = "bad"; }
  else if (age == null) { text = "waiting"; cls = ""; }
  else if (!up || age > 10) { text = `LOST ${Math.round(age)} s`; cls = "bad"; }
  else if (age > 3) { text = `weak · ${age.toFixed(0)} s`; cls = "warn"; }
  else { text = `good · ${age.toFixed(1)} s`; cls = "ok"; }
  $("t-link").textContent = text;
  $("t-link").parentElement.className = cls;
}

function pick(obj, paths) {
  for (const p of paths) {
    const v = p.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
    if (typeof v === "number" && isFinite(v)) return v;
  }
  return null;
}

async function refreshFlightInfo() {
  if (!flight || flight.noInfo) return;
  const id = flight.missionId;
  try {
    const info = await api.call("GET", `/api/v1/missions/${encodeURIComponent(id)}/flight`);
    if (!flight || flight.missionId !== id) return;
    const first = !flight.info;
    flight.info = info; flight.infoAt = Date.now();
    if (first && Array.isArray(info.track)) {
      const live = flight.track.splice(0);
      for (const p of info.track) pushTrack(...ll(p));
      for (const p of live) pushTrack(...p);
    }
    if (Array.isArray(info.target) && info.target.length >= 2) {
      const [lat, lon, alt] = info.target, old = flight.target;
      const same = old && distanceM([old.lat, old.lon], [lat, lon]) < 1;
      // the kind and orbit radius are what this page sent; a target someone else set shows as a plain target
      const t = same ? { ...old, alt_m: alt ?? old.alt_m } : { kind: "fly_to", lat, lon, alt_m: alt };
      if (!same || (old.alt_m !== t.alt_m)) setTarget(t);
      if (alt != null) flight.altTarget = alt;
    } else if (info.target === null && flight.target && flight.target.kind !== "hold") { setTarget(null); flight.altTarget = null; }
    $("resume").classList.toggle("paused", !!info.paused_sweep);
    if (info.paused_sweep) $("resume").firstChild.textContent = "Resume sweep ";
    drawRoute();
    renderTelemetry();
  } catch (err) {
    if (err.status === 404 || err.status === 405) flight.noInfo = true;  // this controller has no flight summary
  }
}

// --- control token ---

async function refreshControl() {
  if (!flight) return;
  const id = flight.droneId;
  try {
    const c = await api.call("GET", `/api/v1/drones/${encodeURIComponent(id)}/control`);
    if (!flight || flight.droneId !== id) return;
    const hadFence = !!flight.control?.limits?.geofence;
    flight.control = c; flight.controlAt = Date.now();
    if (!hadFence && c.limits?.geofence) drawStatic();
    renderControl();
  } catch (err) {
    if (flight) { flight.controlAt = Date.now(); if (err.status === 404 && !flight.control) renderControl(); }
  }
}

function iHold() {
  const h = flight.control?.holder;
  return !!h && h.role === "pilot" && h.name === me.name;
}

function renderControl() {
  const c = flight.control;
  const pill = $("f-holder"), banner = $("takeover"), take = $("take");
  if (!c) { pill.textContent = "control: unknown"; pill.className = "pill"; banner.hidden = true; take.hidden = true; return; }
  const h = c.holder;
  if (iHold()) {
    pill.textContent = "YOU HAVE CONTROL"; pill.className = "pill live";
    banner.hidden = true;
  } else if (!h) {
    pill.textContent = "nobody has control"; pill.className = "pill warn";
    banner.hidden = false; banner.className = "takeover free";
    banner.innerHTML = `Nobody holds control of ${escapeHtml(flight.droneId)}: the controller flies it. Press <b>Take control</b> to fly it yourself.`;
  } else {
    const who = `${h.role === "commander" || h.role === "admin" ? "COMMANDER" : h.role.toUpperCase()} ${escapeHtml(h.name)}`;
    pill.textContent = `${h.role} ${h.name} has control`; pill.className = "pill down";
    banner.hidden = false; banner.className = "takeover";
    const since = c.since ? ` since ${new Date(c.since).toLocaleTimeString()}` : "";
    banner.innerHTML = `<b>${who} HAS TAKEN CONTROL</b> of ${escapeHtml(flight.droneId)}${since}. Your commands are refused until control is handed back. Watch the map and video.`;
  }
  const lim = c.limits || {};
  const bound = (id, lo, hi) => { if (lo != null) $(id).min = lo; if (hi != null) $(id).max = hi; };
  bound("alt-set", lim.min_alt_m, lim.max_alt_m);
  bound("orbit-r", lim.min_orbit_radius_m, lim.max_orbit_radius_m);
  bound("orbit-v", null, lim.max_speed_ms);
  take.hidden = iHold() || (h && h.role !== "pilot");
  take.textContent = h ? "Take control back" : "Take control";
  document.body.classList.toggle("not-in-control", !!c && !iHold());
  $("flight").querySelectorAll("[data-cmd], #land, #alt-up, #alt-down, #alt-go, #orbit-scene, #roi-scene, #roi-clear, #pitch")
    .forEach((el) => { el.disabled = !!h && !iHold(); });
}

function controlChangeText(d) {
  const h = d.holder ? `${d.holder.role} ${d.holder.name}` : "nobody (the controller flies)";
  return `control → ${h}${d.reason ? " (" + d.reason + ")" : ""}`;
}

async function takeControl() {
  try {
    flight.control = await api.call("POST", `/api/v1/drones/${encodeURIComponent(flight.droneId)}/control/take`);
    renderControl();
  } catch (err) { setResult("primary", plainError(err), "bad"); }
}

// --- commands ---

const GROUP = { fly_to: "pick", orbit: "pick", roi: "pick", hold: "primary", resume: "primary", return: "primary", land: "primary",
  altitude: "altitude", gimbal: "camera", roi_clear: "camera" };
const WORDS = { fly_to: "Fly to", orbit: "Orbit", roi: "Camera at point", roi_clear: "Camera free", gimbal: "Gimbal pitch", hold: "Hold",
  resume: "Resume", return: "Return to station", land: "Land", altitude: "Altitude" };

async function send(body, group) {
  if (!flight) return null;
  group = group || GROUP[body.kind];
  setResult(group, `${WORDS[body.kind]}: sending…`, "info");
  flight.pending = (flight.pending || 0) + 1;
  try {
    const out = await api.call("POST", `/api/v1/drones/${encodeURIComponent(flight.droneId)}/commands`, body);
    const ms = out && out.acked_in_ms != null ? ` in ${Math.round(out.acked_in_ms)} ms` : "";
    setResult(group, `✓ ${WORDS[body.kind]}${describe(body)}: accepted by the drone${ms}${out && out.detail ? " (" + out.detail + ")" : ""}.`, "ok");
    afterAccepted(body);
    return out;
  } catch (err) {
    setResult(group, refusalText(body, err), "bad");
    return null;
  } finally { flight && flight.pending--; }
}

function describe(b) {
  if (b.kind === "fly_to") return ` ${b.lat.toFixed(5)}, ${b.lon.toFixed(5)}${b.alt_m != null ? " at " + Math.round(b.alt_m) + " m" : ""}`;
  if (b.kind === "orbit") return ` ${Math.round(b.radius_m)} m ${b.direction === "cw" ? "clockwise" : "counter-clockwise"} at ${b.speed_ms} m/s`;
  if (b.kind === "altitude") return ` ${Math.round(b.alt_m)} m`;
  if (b.kind === "gimbal") return ` ${b.pitch_deg}°`;
  return "";
}

function refusalText(body, err) {
  const head = { 409: "Refused", 422: "Not allowed", 403: "Not allowed", 502: "The drone rejected it", 504: "No answer from the drone",
    503: "Not available" }[err.status] || (err.status ? `Failed (${err.status})` : "Could not reach the controller");
  return `✗ ${WORDS[body.kind]}: ${head}: ${plainError(err)}`;
}

function afterAccepted(b) {
  if (b.kind === "fly_to") { setTarget({ kind: "fly_to", lat: b.lat, lon: b.lon, alt_m: b.alt_m, local: true }); clearPick(); }
  else if (b.kind === "orbit") { setTarget({ kind: "orbit", lat: b.lat, lon: b.lon, radius_m: b.radius_m, direction: b.direction, local: true }); clearPick(); }
  else if (b.kind === "roi") clearPick();
  else if (b.kind === "altitude") { flight.altTarget = b.alt_m; renderTelemetry(); }
  else if (b.kind === "hold") { const p = flight.layers.drone?.getLatLng(); setTarget(p ? { kind: "hold", lat: p.lat, lon: p.lng, local: true } : null); }
  else if (b.kind === "return" || b.kind === "land" || b.kind === "resume") setTarget(null);
  setTimeout(refreshFlightInfo, 300);
}

function pickedCommand(kind) {
  if (!flight.picked) {
    setResult("pick", "", "");
    $("map-hint").textContent = "First tap the map to pick a point."; $("map-hint").classList.add("nudge"); $("map-hint").hidden = false;
    return;
  }
  const { lat, lon } = flight.picked;
  if (kind === "fly_to") return send({ kind, lat, lon });
  if (kind === "roi") return send({ kind, lat, lon });
  return send(orbitBody(lat, lon));
}

function orbitBody(lat, lon) {
  return { kind: "orbit", lat, lon, radius_m: Number($("orbit-r").value), direction: flight.dir || "cw", speed_ms: Number($("orbit-v").value) };
}

function altitudeStep(delta) {
  const base = flight.altTarget ?? altNow();
  if (base == null) { setResult("altitude", "No altitude known yet: wait for telemetry.", "bad"); return; }
  send({ kind: "altitude", alt_m: Math.round(base + delta) });
}

function setResult(group, text, cls) {
  const el = document.querySelector(`[data-result="${group}"]`);
  if (!el) return;
  el.textContent = text;
  el.className = "result" + (cls ? " " + cls : "") + (el.classList.contains("wide") ? " wide" : "");
  clearTimeout(el._t);
  if (cls === "ok") el._t = setTimeout(() => { if (el.textContent === text) el.textContent = ""; }, 12_000);
}

function controlCommandEvent(d) {
  const by = d.by ? `${d.by.role} ${d.by.name}` : "someone";
  const mine = d.by && d.by.name === me.name;
  logStep(`${by}: ${WORDS[d.kind] || d.kind} ${d.ok ? "✓" : "✗"}${d.detail ? " " + d.detail : ""}`, d.ok);
  if (!mine && d.ok) setTimeout(refreshFlightInfo, 300);  // a commander moved the drone: redraw its target
}

function logStep(text, ok, at) {
  if (!flight) return;
  const time = at ? new Date(at) : new Date();
  flight.steps.push(`<div class="${ok === false ? "bad" : ""}"><span class="muted">${time.toLocaleTimeString()}</span> ${escapeHtml(text)}</div>`);
  if (flight.steps.length > 12) flight.steps.shift();
  $("f-steps").innerHTML = flight.steps.slice().reverse().join("");
}

// --- video ---

async function refreshFeeds() {
  try {
    const feeds = await api.call("GET", "/api/v1/video/feeds");
    if (!flight) return;
    videoFeedsChanged(feeds.filter((f) => f.drone_id === flight.droneId).map((f) => f.kind));
  } catch (err) { $("f-video-status").textContent = "video: " + plainError(err); }
}

function videoFeedsChanged(kinds) {
  flight.feeds = kinds;
  if (!kinds.includes(flight.kind)) {
    if (flight.viewer) { flight.viewer.close(); flight.viewer = null; }
    $("f-video-status").textContent = kinds.length ? `${flight.kind}: not streaming (try ${kinds[0]})` : "no video from this drone yet";
    return;
  }
  if (!flight.viewer && !flight.connecting) watch();
}

async function watch() {
  const kind = flight.kind, droneId = flight.droneId;
  flight.connecting = true;
  $("f-video-status").textContent = `${kind}: connecting…`;
  try {
    const viewer = await watchFeed(api, droneId, kind, $("f-video"));
    if (!flight || flight.droneId !== droneId || flight.kind !== kind) { viewer.close(); return; }
    flight.viewer = viewer;
    $("f-video-status").textContent = `${kind} · live`;
  } catch (err) {
    $("f-video-status").textContent = `${kind}: ${plainError(err)}`;
  } finally { if (flight) flight.connecting = false; }
}

function switchVideo(kind) {
  if (!flight || flight.kind === kind) return;
  flight.kind = kind;
  document.querySelectorAll("[data-video]").forEach((b) => { b.classList.toggle("on", b.dataset.video === kind); b.setAttribute("aria-pressed", b.dataset.video === kind); });
  if (flight.viewer) { flight.viewer.close(); flight.viewer = null; }
  $("f-video").srcObject = null;
  videoFeedsChanged(flight.feeds);
}

// --- errors in plain words ---

function plainError(err) {
  let msg = err && err.message ? err.message : String(err);
  if (msg.startsWith("[")) {
    try {
      const items = JSON.parse(msg);
      msg = items.map((i) => {
        const field = (i.loc || []).filter((p) => p !== "body" && typeof p === "string" && !/^(fly_to|altitude|orbit|roi|roi_clear|gimbal|hold|resume|return|land)$/.test(p)).pop();
        return (field ? field.replace(/_/g, " ").replace(/ m$/, " (m)").replace(/ ms$/, " (m/s)").replace(/ deg$/, " (°)") + ": " : "") + String(i.msg || "").replace(/^Value error, /, "");
      }).join("; ");
    } catch (e) { /* not JSON after all */ }
  }
  return msg;
}

function showError(err) { const el = $("signin-error"); el.textContent = plainError(err); }

// --- geometry helpers ---

// distanceM, bearingDeg, compass: geo.js

// --- wiring ---

function sceneLatLon() { const inc = missions.get(flight.missionId)?.incident; return inc ? { lat: inc.lat, lon: inc.lon } : null; }

function askLand() {
  const alt = altNow();
  $("land-text").textContent = `${flight.droneId} descends${alt != null ? ` from ${Math.round(alt)} m` : ""} and lands where it is now. ` +
    "Check the ground below on the video first: it will not fly home by itself afterwards.";
  const dlg = $("land-dialog");
  dlg.returnValue = "";
  dlg.showModal();
}
$("land-dialog").addEventListener("close", () => {
  if ($("land-dialog").returnValue === "land" && flight) send({ kind: "land", confirm: true });
  else if (flight) setResult("primary", "Landing cancelled: nothing was sent.", "info");
});

document.addEventListener("click", (e) => {
  const b = e.target.closest("button");
  if (!b || b.disabled) return;
  if (b.dataset.act) return act(b.dataset.act, b.dataset.id, b);
  if (b.dataset.fly) return openFlight(b.dataset.fly);
  if (b.dataset.dismiss) { gone.delete(b.dataset.dismiss); return renderGone(); }
  if (!flight) return;
  if (b.dataset.video) return switchVideo(b.dataset.video);
  if (b.dataset.dir) {
    flight.dir = b.dataset.dir;
    document.querySelectorAll("[data-dir]").forEach((x) => { x.classList.toggle("on", x === b); x.setAttribute("aria-pressed", x === b); });
    return;
  }
  if (b.dataset.cmd && b.closest("#pick")) return pickedCommand(b.dataset.cmd);
  if (b.dataset.cmd) return send({ kind: b.dataset.cmd });
  switch (b.id) {
    case "land": return askLand();
    case "pick-cancel": return clearPick();
    case "alt-up": return altitudeStep(10);
    case "alt-down": return altitudeStep(-10);
    case "alt-go": return send({ kind: "altitude", alt_m: Number($("alt-set").value) });
    case "orbit-scene": { const s = sceneLatLon(); return s && send(orbitBody(s.lat, s.lon), "orbit"); }
    case "roi-scene": { const s = sceneLatLon(); return s && send({ kind: "roi", lat: s.lat, lon: s.lon }, "camera"); }
    case "take": return takeControl();
    case "back": return showFlight(false);
    case "recenter": return setFollow(true);
  }
});
$("alt-set").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); send({ kind: "altitude", alt_m: Number($("alt-set").value) }); } });
$("pitch").addEventListener("input", () => { $("pitch-val").textContent = $("pitch").value + "°"; });
$("pitch").addEventListener("change", () => send({ kind: "gimbal", pitch_deg: Number($("pitch").value) }));

document.addEventListener("keydown", (e) => {
  if (!flight || $("flight").hidden || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest("input, textarea, select") || $("land-dialog").open) return;
  const k = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const press = (id) => { const b = $(id); if (!b.disabled) b.click(); };
  const keys = {
    f: () => pickedCommand("fly_to"), o: () => pickedCommand("orbit"), c: () => pickedCommand("roi"),
    h: () => press("hold"), s: () => press("resume"), r: () => press("return"), l: () => press("land"),
    ArrowUp: () => press("alt-up"), ArrowDown: () => press("alt-down"), Escape: () => clearPick(),
    v: () => switchVideo(flight.kind === "visible" ? "thermal" : "visible"),
    "[": () => nudgePitch(-10), "]": () => nudgePitch(10),
  };
  if (keys[k]) { e.preventDefault(); keys[k](); }
});
function nudgePitch(d) {
  const p = $("pitch");
  if (p.disabled) return;
  p.value = Math.max(-90, Math.min(0, Number(p.value) + d));
  $("pitch-val").textContent = p.value + "°";
  send({ kind: "gimbal", pitch_deg: Number(p.value) });
}

// Any first tap or key unlocks the offer sound (browsers allow audio only after a gesture).
for (const type of ["pointerdown", "keydown"]) document.addEventListener(type, () => alarm.unlock(), { capture: true });
$("sound").addEventListener("click", () => { alarm.unlock(); alarm.askNotifications(); alarm.beep(false); });
$("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  alarm.unlock();
  alarm.askNotifications();
  signedIn($("token").value.trim()).catch((err) => { $("signin-error").textContent = plainError(err); });
});
$("signout").addEventListener("click", () => { sessionStorage.removeItem("pilotToken"); sessionStorage.removeItem("flightMission"); location.reload(); });
setInterval(tick, 250);

const saved = sessionStorage.getItem("pilotToken");
if (saved) signedIn(saved).catch(() => { $("signin").hidden = false; }); else $("signin").hidden = false;

// For tests and operators: what the flight view shows, and where a map point is on the screen.
window.pilotView = () => flight && {
  missionId: flight.missionId, droneId: flight.droneId, target: flight.target, picked: flight.picked, track: flight.track.length,
  drone: flight.layers.drone ? { lat: flight.layers.drone.getLatLng().lat, lon: flight.layers.drone.getLatLng().lng } : null,
  control: flight.control, info: flight.info, telemetry: flight.tele,
};
window.pilotMapPoint = (lat, lon) => {
  const p = flight.map.latLngToContainerPoint([lat, lon]), r = $("map").getBoundingClientRect();
  return { x: r.left + p.x, y: r.top + p.y };
};
window.pilotMapShow = (lat, lon, zoom) => { setFollow(false); flight.map.setView([lat, lon], zoom || flight.map.getZoom(), { animate: false }); };
window.pilotAlarm = () => ({ beeps: alarm.beeps, notified: alarm.notified, audio: alarm.ctx ? alarm.ctx.state : "none", title: document.title });
