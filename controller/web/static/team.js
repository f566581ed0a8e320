// Search-team page: hotspots on a map and in a list, with distance and bearing from the team, a thumbnail
// that opens large, a navigation link, and Confirm / Dismiss / Found. Found asks first and then waits
// UNDO_MS before anything is sent (it closes the search and recalls the drones); Dismiss also waits (it
// suppresses new hotspots nearby). The map shows the open searches' areas, the drones' sweep lines and the
// search drones themselves; the team can set its own position by tapping the map.
"use strict";

const UNDO_MS = 8000;
const $ = (id) => document.getElementById(id);
const hotspots = new Map();  // id -> hotspot view
const thumbs = new Map();    // id -> object URL of the thumbnail (fetched with the token)
const markers = new Map();   // hotspot id -> circle marker
const pending = new Map();   // hotspot id -> {status, deadline, timer}
const searches = new Map();  // incident id -> {detail, layers: [Leaflet layers]}
const drones = new Map();    // drone id -> {marker, data}
let api = null, stream = null, me = null, map = null, myPos = null, myMarker = null;
let posSource = null, gpsPos = null, picking = false, fitted = false, userMoved = false, dronePoll = null, searchTimer = null;
const COLOURS = { new: "#ffab40", confirmed: "#ff6b6b", dismissed: "#b0bac5", found: "#5fd068" };
const OPEN_INCIDENT = ["queued", "offered", "dispatched", "on_scene"];
const ACTIVE_MISSION = new Set(["accepted", "launched", "on_scene", "returning"]);
const ACT_LABEL = { found: "Found", dismissed: "Dismiss", confirmed: "Confirm" };

// distanceM, bearingDeg, compass: geo.js

async function signedIn(token) {
  api = new ApiClient(token);
  const who = await api.call("GET", "/api/v1/me");
  if (!["search_team", "commander", "admin"].includes(who.role)) throw new Error("this page is for search-team tokens");
  me = who;
  sessionStorage.setItem("teamToken", token);
  $("signin").hidden = true; $("board").hidden = false;
  $("team").textContent = "· " + who.name;
  setupMap();
  watchPosition();
  stream = api.stream({}, onEvent, (up) => {
    $("link").textContent = up ? "live" : "offline";
    $("link").className = "pill " + (up ? "live" : "down");
  });
}

function setupMap() {
  if (map) return;
  map = L.map("map", { zoomControl: true }).setView([32.06, 118.79], 12);
  api.call("GET", "/api/v1/ui-config").then((cfg) => {
    const base = cfg && cfg.basemap;
    if (base && base.url) {
      L.tileLayer(base.url, { minZoom: base.min_zoom ?? 0, maxZoom: base.max_zoom ?? 19, attribution: base.attribution || "" }).addTo(map);
    } else if (cfg && cfg.tile_url) {
      L.tileLayer(cfg.tile_url, { maxZoom: 19, attribution: cfg.tile_attribution || "" }).addTo(map);
    }
  }).catch(() => {});
  map.on("dragstart", () => { userMoved = true; });
  map.on("click", (e) => {
    if (!picking) return;
    setPicking(false);
    posSource = "map";
    setMyPos([e.latlng.lat, e.latlng.lng], "set on the map");
  });
}

// --- the team's position: GPS, a tap on the map, or typed coordinates --------------------------------

function positionText(text) { $("position").textContent = text; }

function watchPosition() {
  if (!navigator.geolocation) { positionText("Your position: no GPS in this browser. Tap “Set position on map”."); return; }
  navigator.geolocation.watchPosition((p) => {
    gpsPos = [p.coords.latitude, p.coords.longitude];
    if (posSource === null || posSource === "gps") { posSource = "gps"; setMyPos(gpsPos, "GPS"); }
    else $("use-gps").hidden = false;
  }, () => {
    if (posSource === null) positionText("Your position: GPS not available. Tap “Set position on map”.");
  }, { enableHighAccuracy: true, maximumAge: 5000 });
}

function setMyPos(pos, how) {
  myPos = pos;
  positionText(`Your position (${how}): ${pos[0].toFixed(6)}, ${pos[1].toFixed(6)}`);
  $("use-gps").hidden = !(posSource !== "gps" && gpsPos);
  if (map) {
    if (!myMarker) {
      myMarker = L.circleMarker(pos, { radius: 8, color: "#fff", weight: 2, fillColor: "#2196f3", fillOpacity: 1, className: "you" })
        .addTo(map).bindTooltip("You");
    } else myMarker.setLatLng(pos);
  }
  render();
}

function setPicking(on) {
  picking = on;
  $("pick-pos").setAttribute("aria-pressed", String(on));
  $("pick-pos").textContent = on ? "Cancel" : "Set position on map";
  $("pick-hint").hidden = !on;
  $("map").classList.toggle("picking", on);
}

// --- hotspots ----------------------------------------------------------------------------------------

async function loadHotspots() {
  const list = await api.call("GET", "/api/v1/hotspots");
  for (const h of list) upsert(h);
  render();
  fitOnce();
}

function upsert(h) {
  const old = hotspots.get(h.id);
  hotspots.set(h.id, h);
  if (h.thumbnail_url && (!old || old.last_seen !== h.last_seen || !thumbs.has(h.id))) fetchThumb(h);
}

async function fetchThumb(h) {
  try {
    const res = await fetch(h.thumbnail_url, { headers: { Authorization: "Bearer " + api.token } });
    if (!res.ok) return;
    const url = URL.createObjectURL(await res.blob());
    if (thumbs.has(h.id)) URL.revokeObjectURL(thumbs.get(h.id));
    thumbs.set(h.id, url);
    const img = document.querySelector(`img[data-thumb="${h.id}"]`);
    if (img) img.src = url;
    if ($("photo-dialog").open && $("photo-dialog").dataset.id === h.id) $("photo-large").src = url;
  } catch (e) { /* the list still works without the picture */ }
}

function refreshSearchesSoon() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => loadSearches().catch(console.error), 300);
}

function onEvent(ev) {
  if (ev.type === "hello") {
    loadHotspots().catch(showError);
    loadSearches().catch(console.error);
    return;
  }
  if ((ev.type === "hotspot.raised" || ev.type === "hotspot.updated") && ev.data) {
    upsert(ev.data);
    render();
    if (ev.type === "hotspot.raised") fitOnce(true);
    return;
  }
  if (ev.type === "drone.telemetry" && ev.data && drones.has(ev.data.drone_id)) {
    const d = drones.get(ev.data.drone_id);
    if (typeof ev.data.lat === "number") placeDrone({ ...d.data, ...ev.data, id: ev.data.drone_id });
    return;
  }
  if (ev.type.startsWith("incident.") || ev.type.startsWith("mission.")) refreshSearchesSoon();
}

function card(h) {
  const where = [h.lat, h.lon];
  let rel = `<span class="muted">distance: set your position above</span>`;
  if (myPos) {
    const d = distanceM(myPos, where), b = bearingDeg(myPos, where);
    rel = `<span class="arrow" aria-hidden="true" style="transform:rotate(${Math.round(b)}deg)">↑</span>
      <b data-distance="${h.id}">${fmtDistance(d)}</b> <span data-bearing="${h.id}">${Math.round(b)}° ${compass(b)}</span>`;
  }
  const nav = `https://www.openstreetmap.org/directions?to=${h.lat.toFixed(6)},${h.lon.toFixed(6)}`;
  const geo = `geo:${h.lat.toFixed(7)},${h.lon.toFixed(7)}?q=${h.lat.toFixed(7)},${h.lon.toFixed(7)}(${h.id})`;
  const open = h.status === "new" || h.status === "confirmed";
  const wait = pending.get(h.id);
  let actions = "";
  if (open && wait) {
    actions = `<div class="waiting" data-pending="${h.id}">
      <b>${wait.status === "found" ? "Found: the search ends" : "Dismissed"}</b> in <b data-countdown-for="${h.id}">${secondsLeft(wait)} s</b>. Nothing is sent before.
      <p class="actions"><button class="secondary" data-undo="${h.id}" type="button">Undo</button></p></div>`;
  } else if (open) {
    actions = `<p class="actions">
      ${h.status === "new" ? `<button class="primary" data-act="confirmed" data-id="${h.id}" type="button">Confirm</button>` : ""}
      <button class="secondary" data-act="dismissed" data-id="${h.id}" type="button">Dismiss</button>
      <button class="found" data-act="found" data-id="${h.id}" type="button">Found the person…</button></p>`;
  }
  const by = h.status_by && h.status !== "new" ? ` by ${escapeHtml(h.status_by)}` : "";
  return `<article class="card hotspot ${h.status}" data-hotspot="${h.id}">
    <button class="thumb" type="button" data-enlarge="${h.id}" aria-label="Tap to enlarge the thermal image of ${escapeHtml(h.id)}">
      <img data-thumb="${h.id}" alt="thermal thumbnail of ${escapeHtml(h.id)}" src="${thumbs.get(h.id) || ""}">
      <span class="zoom" aria-hidden="true">Tap to enlarge</span>
    </button>
    <div>
      <h2>${escapeHtml(h.id)} <span class="status ${h.status}">${h.status}${by}</span></h2>
      <div class="rel">${rel}</div>
      <div class="muted">${h.lat.toFixed(6)}, ${h.lon.toFixed(6)} ±${Math.round(h.error_m)} m · ${escapeHtml(h.kind)}-like · score ${h.score.toFixed(2)}</div>
      <div class="muted">seen ${h.hits}× by ${escapeHtml(h.drones.join(", "))} · last ${new Date(h.last_seen).toLocaleTimeString()}</div>
      <p><a class="nav" href="${geo}" data-nav="${h.id}">Navigate</a> · <a href="${nav}" target="_blank" rel="noopener">map directions</a></p>
      ${actions}
    </div>
  </article>`;
}

function render() {
  const list = [...hotspots.values()].sort((a, b) => {
    const rank = (h) => ({ found: 0, confirmed: 1, new: 2, dismissed: 3 }[h.status]);
    return rank(a) - rank(b) || (myPos ? distanceM(myPos, [a.lat, a.lon]) - distanceM(myPos, [b.lat, b.lon]) : a.id.localeCompare(b.id));
  });
  const focused = document.activeElement && document.activeElement.closest("#hotspots") ? focusKey(document.activeElement) : null;
  $("hotspots").innerHTML = list.map(card).join("");
  if (focused) { const el = document.querySelector(focused); if (el) el.focus(); }
  $("empty").hidden = list.length > 0;
  if (!map) return;
  for (const h of list) {
    let m = markers.get(h.id);
    const style = { radius: 10, color: "#0b1118", weight: 3, fillColor: COLOURS[h.status], fillOpacity: 1, className: `hotspot-marker hs-${h.status}` };
    if (!m) {
      m = L.circleMarker([h.lat, h.lon], style).addTo(map);
      m.on("click", () => {
        if (picking) return;
        const el = document.querySelector(`article[data-hotspot="${h.id}"]`);
        if (el) el.scrollIntoView({ behavior: "smooth", block: "center" });
      });
      markers.set(h.id, m);
    }
    m.setLatLng([h.lat, h.lon]); m.setStyle(style);
    // A label that stays (phones have no hover): which hotspot this is, and its state unless new.
    m.unbindTooltip();
    m.bindTooltip(h.status === "new" ? h.id : `${h.id} · ${h.status}`, { permanent: true, direction: "right", offset: [10, 0], className: `hs-label hs-${h.status}` });
  }
}

function focusKey(el) {
  for (const attr of ["data-act", "data-undo", "data-enlarge"]) {
    if (el.hasAttribute(attr)) {
      const id = el.getAttribute(attr === "data-act" ? "data-id" : attr);
      return attr === "data-act" ? `button[data-act="${el.dataset.act}"][data-id="${id}"]` : `button[${attr}="${id}"]`;
    }
  }
  return null;
}

// Fits hotspots, search areas, search drones and the team once, and again when something new arrives,
// unless the user has moved the map since.
function fitOnce(force) {
  if (!map || (fitted && !force) || userMoved) return;
  const pts = [...hotspots.values()].map((h) => [h.lat, h.lon]);
  for (const s of searches.values()) for (const l of s.layers) if (l.getBounds) { const b = l.getBounds(); pts.push(b.getNorthWest(), b.getSouthEast()); }
  for (const d of drones.values()) pts.push(d.marker.getLatLng());
  if (!pts.length) return;
  if (myPos) pts.push(myPos);
  map.fitBounds(L.latLngBounds(pts).pad(0.15), { maxZoom: 17, animate: false });
  fitted = true;
}

// --- Found / Dismiss: asked, then held back for UNDO_MS so a slip can be undone -----------------------

function secondsLeft(w) { return Math.max(0, Math.ceil((w.deadline - Date.now()) / 1000)); }

function startPending(id, status) {
  if (pending.has(id)) return;
  const w = { status, deadline: Date.now() + UNDO_MS };
  w.timer = setTimeout(() => send(id, status), UNDO_MS);
  pending.set(id, w);
  render(); renderPendingBar();
  const undo = document.querySelector(`button[data-undo="${id}"]`);
  if (undo) undo.focus();
}

function undo(id) {
  const w = pending.get(id);
  if (!w) return;
  clearTimeout(w.timer);
  pending.delete(id);
  render(); renderPendingBar();
  const btn = document.querySelector(`button[data-act="${w.status}"][data-id="${id}"]`);
  if (btn) btn.focus();
}

async function send(id, status) {
  try {
    const h = await api.call("POST", `/api/v1/hotspots/${id}/status`, { status });
    pending.delete(id);
    upsert(h);
  } catch (err) {
    pending.delete(id);
    alert(`Could not mark ${id} ${status}: ${err.message}`);
  }
  render(); renderPendingBar();
}

function renderPendingBar() {
  $("pending").innerHTML = [...pending.entries()].map(([id, w]) => `<div class="pending">
    <span>${w.status === "found" ? `<b>Found</b> ${escapeHtml(id)}: the search ends` : `<b>Dismiss</b> ${escapeHtml(id)}`} in <b data-countdown-for="${id}">${secondsLeft(w)} s</b></span>
    <button type="button" data-undo="${id}">Undo</button></div>`).join("");
}

setInterval(() => {
  for (const [id, w] of pending) for (const el of document.querySelectorAll(`[data-countdown-for="${id}"]`)) el.textContent = `${secondsLeft(w)} s`;
}, 250);

window.addEventListener("beforeunload", (e) => { if (pending.size) { e.preventDefault(); e.returnValue = ""; } });

function askFound(id) {
  const dlg = $("found-dialog");
  dlg.dataset.id = id;
  dlg.querySelector('[data-fill="id"]').textContent = id;
  $("undo-seconds").textContent = `${UNDO_MS / 1000} seconds`;
  dlg.returnValue = "";
  dlg.showModal();
}
$("found-dialog").addEventListener("close", () => {
  const dlg = $("found-dialog");
  if (dlg.returnValue === "found") startPending(dlg.dataset.id, "found");
});

function enlarge(id) {
  const h = hotspots.get(id);
  const dlg = $("photo-dialog");
  dlg.dataset.id = id;
  dlg.querySelector('[data-fill="id"]').textContent = id;
  $("photo-large").src = thumbs.get(id) || "";
  $("photo-large").alt = `thermal image of ${id}, enlarged`;
  $("photo-caption").textContent = h ? `${h.kind}-like · score ${h.score.toFixed(2)} · seen ${h.hits}× · last ${new Date(h.last_seen).toLocaleTimeString()}` : "";
  dlg.showModal();
}

document.addEventListener("click", async (e) => {
  const u = e.target.closest("button[data-undo]");
  if (u) { undo(u.dataset.undo); return; }
  const big = e.target.closest("button[data-enlarge]");
  if (big) { enlarge(big.dataset.enlarge); return; }
  const btn = e.target.closest("button[data-act]");
  if (!btn) return;
  const id = btn.dataset.id, act = btn.dataset.act;
  if (act === "found") { askFound(id); return; }
  if (act === "dismissed") { startPending(id, "dismissed"); return; }
  btn.disabled = true;
  try {
    upsert(await api.call("POST", `/api/v1/hotspots/${id}/status`, { status: act }));
    render();
  } catch (err) { alert(`Could not mark ${id} ${ACT_LABEL[act] || act}: ${err.message}`); btn.disabled = false; }
});
$("photo-dialog").addEventListener("click", (e) => { if (e.target === $("photo-dialog")) $("photo-dialog").close(); });

// --- open searches: area, sweep lines and drones -----------------------------------------------------

async function loadSearches() {
  const q = OPEN_INCIDENT.map((s) => "status=" + s).join("&");
  const list = await api.call("GET", `/api/v1/incidents?${q}&category=missing_person`);
  const details = await Promise.all(list.map((i) => api.call("GET", `/api/v1/incidents/${i.id}`).catch(() => null)));
  const seen = new Set();
  for (const d of details) {
    if (!d) continue;
    seen.add(d.id);
    drawSearch(d);
  }
  for (const [id, s] of searches) if (!seen.has(id)) { for (const l of s.layers) l.remove(); searches.delete(id); }
  const names = [...searches.values()].map(({ detail: d }) => {
    const active = d.missions.filter((m) => ACTIVE_MISSION.has(m.state)).length;
    const area = d.search_area && d.search_area.radius_m ? `${Math.round(d.search_area.radius_m)} m around the last seen point` : d.search_area ? "drawn area" : "no area";
    return `${d.id}: ${active} drone${active === 1 ? "" : "s"}, ${area}`;
  });
  $("searches").textContent = names.length ? "Searching — " + names.join(" · ") : "No open search.";
  fitOnce();
  pollDrones();
}

function drawSearch(d) {
  const old = searches.get(d.id);
  if (old) for (const l of old.layers) l.remove();
  const layers = [];
  const areaStyle = { color: "#ffd54f", weight: 3, dashArray: "8 6", fillColor: "#ffd54f", fillOpacity: 0.08, className: "search-area", interactive: false };
  if (d.search_area && d.search_area.polygon) {
    layers.push(L.polygon(d.search_area.polygon.map(([lon, lat]) => [lat, lon]), areaStyle));
  } else if (d.search_area && d.search_area.radius_m) {
    layers.push(L.circle([d.lat, d.lon], { ...areaStyle, radius: d.search_area.radius_m }));
  }
  for (const m of d.missions) {
    if (!m.plan || !ACTIVE_MISSION.has(m.state) || !m.plan.waypoints.length) continue;
    layers.push(L.polyline(m.plan.waypoints, { color: "#40e0ff", weight: 1.5, opacity: 0.55, className: "search-strip", interactive: false }));
  }
  for (const l of layers) l.addTo(map);
  searches.set(d.id, { detail: d, layers });
}

function searchMissionIds() {
  const ids = new Set();
  for (const { detail } of searches.values()) for (const m of detail.missions) if (ACTIVE_MISSION.has(m.state)) ids.add(m.id);
  return ids;
}

async function pollDrones() {
  clearTimeout(dronePoll);
  const missionIds = searchMissionIds();
  try {
    if (missionIds.size) {
      const list = await api.call("GET", "/api/v1/drones");
      const keep = new Set();
      const before = drones.size;
      for (const d of list) if (d.mission_id && missionIds.has(d.mission_id)) { keep.add(d.id); placeDrone(d); }
      if (drones.size > before) fitOnce(true);
      for (const [id, d] of drones) if (!keep.has(id)) { d.marker.remove(); drones.delete(id); }
    } else {
      for (const d of drones.values()) d.marker.remove();
      drones.clear();
    }
  } catch (e) { console.error(e); }
  if (missionIds.size) dronePoll = setTimeout(pollDrones, 2000);
}

function placeDrone(d) {
  const short = d.id.split("-").slice(-1)[0];
  let entry = drones.get(d.id);
  if (!entry) {
    const icon = L.divIcon({
      className: "drone-icon", iconSize: [24, 24], iconAnchor: [12, 12],
      html: `<div class="body" data-drone="${escapeHtml(d.id)}"></div><span class="label">${escapeHtml(short)}</span>`,
    });
    entry = { marker: L.marker([d.lat, d.lon], { icon, keyboard: false, zIndexOffset: 500 }).addTo(map), data: d };
    drones.set(d.id, entry);
  }
  entry.data = d;
  entry.marker.setLatLng([d.lat, d.lon]);
  const batt = typeof d.battery_pct === "number" ? ` · battery ${Math.round(d.battery_pct)}%` : "";
  entry.marker.bindTooltip(`${d.id} · ${String(d.state || "").replace("_", " ")}${batt}`);
}

// --- page wiring ---------------------------------------------------------------------------------------

function showError(e) { const el = $("signin-error"); if (el) el.textContent = e.message || String(e); console.error(e); }

$("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  signedIn($("token").value.trim()).catch(showError);
});
$("signout").addEventListener("click", () => { sessionStorage.removeItem("teamToken"); location.reload(); });
$("pick-pos").addEventListener("click", () => setPicking(!picking));
$("set-pos").addEventListener("click", () => {
  const form = $("manual-pos");
  form.hidden = !form.hidden;
  $("set-pos").setAttribute("aria-expanded", String(!form.hidden));
  if (!form.hidden) $("my-lat").focus();
});
$("use-gps").addEventListener("click", () => { posSource = "gps"; if (gpsPos) setMyPos(gpsPos, "GPS"); });
$("manual-pos").addEventListener("submit", (e) => {
  e.preventDefault();
  posSource = "typed";
  setMyPos([parseFloat($("my-lat").value), parseFloat($("my-lon").value)], "typed in");
});
for (const [id, ext] of [["geojson", "geojson"], ["kml", "kml"]]) {
  $(id).addEventListener("click", async (e) => {
    e.preventDefault();
    const res = await fetch(`/api/v1/hotspots.${ext}`, { headers: { Authorization: "Bearer " + api.token } });
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement("a"); a.href = url; a.download = `hotspots.${ext}`; a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });
}

const saved = sessionStorage.getItem("teamToken");
if (saved) signedIn(saved).catch(() => { $("signin").hidden = false; });
else $("signin").hidden = false;
