// Search-team page: hotspots on a map and in a list, with distance and bearing from the team,
// a thumbnail, a navigation link, and Confirm / Dismiss / Found.
"use strict";

const $ = (id) => document.getElementById(id);
const hotspots = new Map();  // id -> hotspot view
const thumbs = new Map();    // id -> object URL of the thumbnail (fetched with the token)
const markers = new Map();
let api = null, stream = null, me = null, map = null, myPos = null, myMarker = null, tiles = null;
const COLOURS = { new: "#ff9800", confirmed: "#e53935", dismissed: "#9e9e9e", found: "#2e7d32" };

function toRad(d) { return d * Math.PI / 180; }
function distanceM(a, b) {  // haversine, good to metres over a search area
  const R = 6371008.8, dLat = toRad(b[0] - a[0]), dLon = toRad(b[1] - a[1]);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(toRad(a[0])) * Math.cos(toRad(b[0])) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}
function bearingDeg(a, b) {
  const y = Math.sin(toRad(b[1] - a[1])) * Math.cos(toRad(b[0]));
  const x = Math.cos(toRad(a[0])) * Math.sin(toRad(b[0])) - Math.sin(toRad(a[0])) * Math.cos(toRad(b[0])) * Math.cos(toRad(b[1] - a[1]));
  return (Math.atan2(y, x) * 180 / Math.PI + 360) % 360;
}
function compass(deg) { return ["N", "NE", "E", "SE", "S", "SW", "W", "NW"][Math.round(deg / 45) % 8]; }

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
    if (cfg && cfg.tile_url) tiles = L.tileLayer(cfg.tile_url, { maxZoom: 19, attribution: cfg.tile_attribution || "" }).addTo(map);
  }).catch(() => {});
}

function watchPosition() {
  if (!navigator.geolocation) { $("position").firstChild.textContent = "Your position: no GPS in this browser. "; return; }
  navigator.geolocation.watchPosition((p) => setMyPos([p.coords.latitude, p.coords.longitude], "GPS"),
    () => { $("position").firstChild.textContent = "Your position: GPS not available. "; },
    { enableHighAccuracy: true, maximumAge: 5000 });
}

function setMyPos(pos, how) {
  myPos = pos;
  $("position").firstChild.textContent = `Your position (${how}): ${pos[0].toFixed(5)}, ${pos[1].toFixed(5)} `;
  if (map) {
    if (!myMarker) myMarker = L.circleMarker(pos, { radius: 7, color: "#2196f3", fillOpacity: .9 }).addTo(map).bindTooltip("you");
    else myMarker.setLatLng(pos);
  }
  render();
}

async function loadHotspots() {
  const list = await api.call("GET", "/api/v1/hotspots");
  for (const h of list) upsert(h);
  render(true);
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
  } catch (e) { /* the list still works without the picture */ }
}

function onEvent(ev) {
  if (ev.type === "hello") { loadHotspots().catch(showError); return; }
  if ((ev.type === "hotspot.raised" || ev.type === "hotspot.updated") && ev.data) {
    upsert(ev.data);
    render(ev.type === "hotspot.raised");
  }
}

function card(h) {
  const where = [h.lat, h.lon];
  let rel = `<span class="muted">distance: set your position</span>`;
  if (myPos) {
    const d = distanceM(myPos, where), b = bearingDeg(myPos, where);
    rel = `<b data-distance="${h.id}">${fmtDistance(d)}</b> <span data-bearing="${h.id}">${Math.round(b)}° ${compass(b)}</span>`;
  }
  const nav = `https://www.openstreetmap.org/directions?to=${h.lat.toFixed(6)},${h.lon.toFixed(6)}`;
  const geo = `geo:${h.lat.toFixed(7)},${h.lon.toFixed(7)}?q=${h.lat.toFixed(7)},${h.lon.toFixed(7)}(${h.id})`;
  const open = h.status === "new" || h.status === "confirmed";
  return `<article class="card hotspot ${h.status}" data-hotspot="${h.id}">
    <img data-thumb="${h.id}" alt="thermal thumbnail of ${h.id}" src="${thumbs.get(h.id) || ""}">
    <div>
      <h2>${escapeHtml(h.id)} <span class="status" style="color:${COLOURS[h.status]}">${h.status}</span></h2>
      <div>${rel}</div>
      <div class="muted">${h.lat.toFixed(6)}, ${h.lon.toFixed(6)} ±${Math.round(h.error_m)} m · ${escapeHtml(h.kind)}-like · score ${h.score.toFixed(2)}</div>
      <div class="muted">seen ${h.hits}× by ${escapeHtml(h.drones.join(", "))} · last ${new Date(h.last_seen).toLocaleTimeString()}</div>
      <p><a class="nav" href="${geo}" data-nav="${h.id}">Navigate</a> · <a href="${nav}" target="_blank" rel="noopener">map directions</a></p>
      ${open ? `<p class="actions">
        ${h.status === "new" ? `<button class="accept" data-act="confirmed" data-id="${h.id}">Confirm</button>` : ""}
        <button class="decline" data-act="dismissed" data-id="${h.id}">Dismiss</button>
        <button class="accept" data-act="found" data-id="${h.id}">Found</button></p>` : ""}
    </div>
  </article>`;
}

function render(fit) {
  const list = [...hotspots.values()].sort((a, b) => {
    const rank = (h) => ({ found: 0, confirmed: 1, new: 2, dismissed: 3 }[h.status]);
    return rank(a) - rank(b) || (myPos ? distanceM(myPos, [a.lat, a.lon]) - distanceM(myPos, [b.lat, b.lon]) : a.id.localeCompare(b.id));
  });
  $("hotspots").innerHTML = list.map(card).join("");
  $("empty").hidden = list.length > 0;
  if (!map) return;
  for (const h of list) {
    let m = markers.get(h.id);
    const style = { radius: 9, color: "#fff", weight: 2, fillColor: COLOURS[h.status], fillOpacity: .95 };
    if (!m) { m = L.circleMarker([h.lat, h.lon], style).addTo(map); markers.set(h.id, m); }
    m.setLatLng([h.lat, h.lon]); m.setStyle(style);
    m.bindTooltip(`${h.id} ${h.status}`);
  }
  if (fit && list.length) {
    const pts = list.map((h) => [h.lat, h.lon]);
    if (myPos) pts.push(myPos);
    map.fitBounds(L.latLngBounds(pts).pad(0.3), { maxZoom: 17 });
  }
}

function showError(e) { const el = $("signin-error"); if (el) el.textContent = e.message || String(e); console.error(e); }

document.addEventListener("click", async (e) => {
  const btn = e.target.closest("button[data-act]");
  if (!btn) return;
  btn.disabled = true;
  try {
    const h = await api.call("POST", `/api/v1/hotspots/${btn.dataset.id}/status`, { status: btn.dataset.act });
    upsert(h); render();
  } catch (err) { alert(`Could not mark ${btn.dataset.id} ${btn.dataset.act}: ${err.message}`); btn.disabled = false; }
});

$("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  signedIn($("token").value.trim()).catch(showError);
});
$("signout").addEventListener("click", () => { sessionStorage.removeItem("teamToken"); location.reload(); });
$("set-pos").addEventListener("click", () => { $("manual-pos").hidden = false; });
$("manual-pos").addEventListener("submit", (e) => {
  e.preventDefault();
  setMyPos([parseFloat($("my-lat").value), parseFloat($("my-lon").value)], "set by hand");
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
