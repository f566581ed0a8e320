// Command page: live map (stations, drones coloured by state, incidents, no-fly zones) and live feeds.
"use strict";

const $ = (id) => document.getElementById(id);
const STATE_COLOUR = {
  standby: "#2ea043", charging: "#7cc46b", offered: "#f5d142", preflight: "#ff9c3a", enroute: "#3fa7ff",
  on_scene: "#d06cff", searching: "#d06cff", returning: "#58c4dc", landed: "#8b9aab", maintenance: "#6e7681", lost_link: "#ff4d4f",
};
const AIRBORNE = new Set(["enroute", "on_scene", "searching", "returning"]);
const GRADE_COLOUR = { 1: "#ff4d4f", 2: "#ff9c3a", 3: "#f5d142", 4: "#7cc46b" };
const OPEN = new Set(["queued", "offered", "dispatched", "on_scene"]);

let api = null, map = null;
const drones = new Map();     // id -> {data, marker}
const incidents = new Map();  // id -> {data, marker}
const liveFeeds = new Map();  // "drone/kind" -> feed info from the server
const watching = new Map();   // "drone/kind" -> {viewer, el}

function droneIcon(state) {
  return { radius: 7, color: "#0b1118", weight: 2, fillColor: STATE_COLOUR[state] || "#ccc", fillOpacity: 0.95 };
}

function upsertDrone(d) {
  const known = drones.get(d.id);
  if (known) {
    Object.assign(known.data, d);
    known.marker.setLatLng([known.data.lat, known.data.lon]).setStyle(droneIcon(known.data.state));
    known.marker.getElement()?.setAttribute("data-state", known.data.state);
    known.marker.setTooltipContent(label(known.data));
    return;
  }
  const marker = L.circleMarker([d.lat, d.lon], droneIcon(d.state)).addTo(map);
  marker.bindTooltip(label(d));
  marker.on("click", () => openFeed(d.id, "visible"));
  marker.getElement()?.setAttribute("data-drone", d.id);
  marker.getElement()?.setAttribute("data-state", d.state);
  drones.set(d.id, { data: { ...d }, marker });
}

function label(d) {
  const alt = d.alt_rel_m ?? d.alt_m;
  return `${d.id} · ${d.state}${alt ? ` · ${Math.round(alt)} m` : ""}${d.battery_pct != null ? ` · ${Math.round(d.battery_pct)}%` : ""}`;
}

function upsertIncident(i) {
  const known = incidents.get(i.id);
  if (!OPEN.has(i.status)) {
    if (known) { known.marker.remove(); incidents.delete(i.id); }
    return;
  }
  const style = { radius: 10, color: GRADE_COLOUR[i.grade] || "#fff", weight: 3, fill: false };
  if (known) { known.marker.setLatLng([i.lat, i.lon]).setStyle(style); known.data = i; return; }
  const marker = L.circleMarker([i.lat, i.lon], style).addTo(map)
    .bindTooltip(`${i.id} · grade ${i.grade} ${CATEGORY_LABEL[i.category] || i.category} · ${i.status}`);
  incidents.set(i.id, { data: i, marker });
}

function onEvent(ev) {
  if (ev.type === "hello") { reload().catch(alertError); return; }
  const d = ev.data || {};
  if (ev.type === "drone.updated") upsertDrone(d);
  else if (ev.type === "drone.telemetry" && drones.has(d.drone_id)) {
    upsertDrone({ id: d.drone_id, lat: d.lat, lon: d.lon, alt_rel_m: d.alt_rel_m, battery_pct: d.battery_pct, state: d.state });
  } else if (ev.type.startsWith("incident.")) upsertIncident(d);
  else if (ev.type === "video.feeds") refreshFeeds().catch(alertError);
  else if (ev.type === "alert") addAlert(d.severity, d.text);
  renderCounts();
}

function addAlert(severity, text) {
  const li = document.createElement("li");
  li.className = severity;
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("alerts").prepend(li);
  while ($("alerts").children.length > 50) $("alerts").lastChild.remove();
}

function renderCounts() {
  const flying = [...drones.values()].filter((d) => AIRBORNE.has(d.data.state)).length;
  $("counts").textContent = `${drones.size} drones · ${flying} flying · ${incidents.size} open incidents`;
}

async function reload() {
  const [stations, ds, incs] = await Promise.all([
    api.call("GET", "/api/v1/stations"),
    api.call("GET", "/api/v1/drones"),
    api.call("GET", "/api/v1/incidents?status=queued&status=offered&status=dispatched&status=on_scene&limit=1000"),
  ]);
  for (const s of stations) {
    L.circleMarker([s.lat, s.lon], { radius: 3, color: "#8b9aab", weight: 1, fillOpacity: 0.6 }).addTo(map).bindTooltip(s.name);
  }
  for (const d of ds) upsertDrone(d);
  for (const i of incs) upsertIncident(i);
  await refreshFeeds();
  renderCounts();
}

async function refreshFeeds() {
  const feeds = await api.call("GET", "/api/v1/video/feeds").catch(() => []);
  liveFeeds.clear();
  for (const f of feeds) liveFeeds.set(`${f.drone_id}/${f.kind}`, f);
  $("available").innerHTML = feeds.map((f) =>
    `<button data-open="${f.drone_id}" data-kind="${f.kind}">${escapeHtml(f.drone_id)} ${f.kind}</button>`).join("") ||
    '<p class="muted">No drone is streaming.</p>';
  for (const [key, w] of watching) if (!liveFeeds.has(key)) closeFeed(key);  // the drone landed
}

async function openFeed(droneId, kind) {
  const key = `${droneId}/${kind}`;
  if (watching.has(key)) return;
  if (!liveFeeds.has(key)) { addAlert("info", `${droneId} has no live ${kind} video (not airborne?)`); return; }
  const el = document.createElement("div");
  el.className = "feed";
  el.dataset.feed = key;
  el.innerHTML = `<video autoplay muted playsinline></video>
    <div class="bar"><span>${escapeHtml(droneId)} · ${kind}</span><button>Close</button></div>`;
  $("feeds").prepend(el);
  const entry = { viewer: null, el };
  watching.set(key, entry);
  el.querySelector("button").onclick = () => closeFeed(key);
  try {
    entry.viewer = await watchFeed(api, droneId, kind, el.querySelector("video"));
  } catch (err) { alertError(err); closeFeed(key); }
}

function closeFeed(key) {
  const entry = watching.get(key);
  if (!entry) return;
  watching.delete(key);
  entry.viewer?.close();
  entry.el.remove();
}

function alertError(err) { addAlert("warning", err.message || String(err)); }

async function start(token) {
  api = new ApiClient(token);
  const who = await api.call("GET", "/api/v1/me");
  const ui = await api.call("GET", "/api/v1/ui-config");
  sessionStorage.setItem("commandToken", token);
  $("signin").hidden = true; $("layout").hidden = false;
  $("who").textContent = `· ${who.name} (${who.role})`;
  map = L.map("map", { preferCanvas: false }).setView(ui.centre, 11);
  if (ui.tile_url) L.tileLayer(ui.tile_url, { attribution: ui.tile_attribution, maxZoom: 19 }).addTo(map);
  L.control.scale().addTo(map);
  L.geoJSON(ui.nofly, { style: { color: "#ff4d4f", weight: 1, fillOpacity: 0.08 } })
    .bindTooltip((layer) => layer.feature.properties.name).addTo(map);
  $("available").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-open]");
    if (b) openFeed(b.dataset.open, b.dataset.kind);
  });
  api.stream({}, onEvent, (up) => { $("link").textContent = up ? "live" : "offline"; $("link").className = "pill " + (up ? "live" : "down"); });
}

$("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  start($("token").value.trim()).catch((err) => { $("signin-error").textContent = err.message; });
});
const saved = sessionStorage.getItem("commandToken");
if (saved) start(saved).catch(() => { $("signin").hidden = false; }); else $("signin").hidden = false;

// For tests and operators: where each drone is drawn on the map.
window.dronefleetMap = () => [...drones.values()].map((d) => ({ id: d.data.id, state: d.data.state, lat: d.marker.getLatLng().lat, lon: d.marker.getLatLng().lng }));
