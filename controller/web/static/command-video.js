// Command console, the video wall: 1, 4 or 9 tiles; each names its drone, its state and its incident; the wall
// (layout and which feed is in which tile) is kept in localStorage and survives a reload; a tile can be enlarged
// (Esc puts it back); thermal video is shown in a false-colour palette with its temperature scale.
"use strict";

const WALL_KEY = "dronefleet.command.wall";
const Wall = { layout: 4, tiles: [], viewers: new Map(), feeds: new Map(), enlarged: null };
Cmd.wall = Wall;

// Thermal display range of the fleet's cameras (0..255 grey is -10..40 °C, fixed span).
const THERMAL_SPAN_C = [-10, 40];
// "Ironbow"-like palette: cold is dark blue-violet, warm (people, engines) orange, yellow and white.
const PALETTE = (() => {
  const stops = [[0, [0, 0, 16]], [0.2, [40, 10, 110]], [0.4, [150, 20, 140]], [0.58, [225, 60, 60]],
    [0.75, [250, 140, 20]], [0.9, [255, 220, 60]], [1, [255, 255, 235]]];
  const lut = new Uint8ClampedArray(256 * 3);
  for (let v = 0; v < 256; v++) {
    const t = v / 255;
    let k = 0;
    while (k < stops.length - 2 && t > stops[k + 1][0]) k++;
    const [t0, c0] = stops[k], [t1, c1] = stops[k + 1];
    const f = (t - t0) / (t1 - t0);
    for (let ch = 0; ch < 3; ch++) lut[v * 3 + ch] = c0[ch] + (c1[ch] - c0[ch]) * f;
  }
  return lut;
})();
const PALETTE_CSS = (() => {
  const parts = [];
  for (let v = 0; v <= 255; v += 32) parts.push(`rgb(${PALETTE[v * 3]},${PALETTE[v * 3 + 1]},${PALETTE[v * 3 + 2]}) ${Math.round(v / 2.55)}%`);
  parts.push(`rgb(${PALETTE[765]},${PALETTE[766]},${PALETTE[767]}) 100%`);
  return `linear-gradient(to right, ${parts.join(", ")})`;
})();

function save() {
  localStorage.setItem(WALL_KEY, JSON.stringify({ layout: Wall.layout, tiles: Wall.tiles.slice(0, Wall.layout) }));
}

function restore() {
  try {
    const doc = JSON.parse(localStorage.getItem(WALL_KEY) || "null");
    if (doc && [1, 4, 9].includes(doc.layout)) {
      Wall.layout = doc.layout;
      Wall.tiles = (doc.tiles || []).map((t) => (t && typeof t.drone === "string" && ["visible", "thermal"].includes(t.kind) ? { drone: t.drone, kind: t.kind } : null));
    }
  } catch (e) { /* a broken entry: start empty */ }
  Wall.tiles.length = Wall.layout;
  for (let k = 0; k < Wall.layout; k++) Wall.tiles[k] = Wall.tiles[k] || null;
}

function keyOf(t) { return t ? `${t.drone}/${t.kind}` : ""; }

Wall.setLayout = (n) => {
  const kept = Wall.tiles.filter(Boolean);
  Wall.layout = n;
  // keep the filled tiles, in order, as many as fit
  Wall.tiles = Array.from({ length: n }, (_, k) => kept[k] || null);
  for (const extra of kept.slice(n)) stopViewer(keyOf(extra));
  save();
  Wall.render();
};

Wall.add = (drone, kind) => {
  const key = `${drone}/${kind}`;
  if (Wall.tiles.some((t) => keyOf(t) === key)) { flash(key); return; }
  let slot = Wall.tiles.findIndex((t) => !t);
  if (slot < 0) {
    if (Wall.layout < 9) { Wall.setLayout(Wall.layout === 1 ? 4 : 9); slot = Wall.tiles.findIndex((t) => !t); }
    else { slot = Wall.layout - 1; stopViewer(keyOf(Wall.tiles[slot])); }
  }
  Wall.tiles[slot] = { drone, kind };
  save();
  Wall.render();
};

Wall.remove = (key) => {
  const k = Wall.tiles.findIndex((t) => keyOf(t) === key);
  if (k >= 0) Wall.tiles[k] = null;
  stopViewer(key);
  if (Wall.enlarged === key) Wall.enlarged = null;
  save();
  Wall.render();
};

function flash(key) {
  const el = document.querySelector(`.feed[data-feed="${CSS.escape(key)}"]`);
  if (el) { el.classList.remove("flash"); void el.offsetWidth; el.classList.add("flash"); }
}

function titleOf(t) {
  const d = Cmd.drones.get(t.drone);
  const state = d ? d.state : "unknown";
  const inc = Cmd.incidentOfDrone(t.drone);
  return {
    state, stateLabel: Cmd.STATE_LABEL[state] || state,
    incident: inc ? `${inc.grade ? `G${inc.grade} ` : ""}${inc.category ? `${CATEGORY_LABEL[inc.category] || inc.category} ` : ""}${inc.id}` : "no incident",
    extra: d ? [d.alt_rel_m != null ? `${Math.round(d.alt_rel_m)} m` : null, d.battery_pct != null ? `${Math.round(d.battery_pct)}%` : null].filter(Boolean).join(" · ") : "",
  };
}

function tileTitleHtml(t) {
  const x = titleOf(t);
  return `<span class="tile-drone">${escapeHtml(t.drone)}</span>
    <span class="pill state" style="--c:${Cmd.STATE_COLOUR[x.state] || "#8b9aab"}" data-field="state">${escapeHtml(x.stateLabel)}</span>
    <span class="kind-badge ${t.kind}">${t.kind === "thermal" ? "Thermal" : "Visible"}</span>
    <span class="tile-incident" data-field="incident">${escapeHtml(x.incident)}</span>
    <span class="muted tile-extra">${escapeHtml(x.extra)}</span>`;
}

Wall.render = () => {
  const box = $("feeds");
  const allEmpty = Wall.tiles.every((t) => !t);
  box.className = `tiles grid-${Wall.layout}${allEmpty ? " all-empty" : ""}`;
  for (const b of document.querySelectorAll(".layout-btns button")) b.setAttribute("aria-pressed", String(Number(b.dataset.layout) === Wall.layout));
  const wanted = new Set(Wall.tiles.filter(Boolean).map(keyOf));
  // drop tiles no longer on the wall, keep the ones that are (their video keeps playing)
  for (const el of [...box.children]) if (!el.dataset.feed || !wanted.has(el.dataset.feed)) el.remove();  // incl. empty tiles
  Wall.tiles.forEach((t, k) => {
    if (!t && allEmpty && k > 0) return;  // an empty wall is one line, not a grid of empty boxes
    let el = t ? box.querySelector(`.feed[data-feed="${CSS.escape(keyOf(t))}"]`) : null;
    if (!el) {
      el = document.createElement("div");
      if (t) {
        el.className = `feed tile kind-${t.kind}`;
        el.dataset.feed = keyOf(t);
        el.innerHTML = `<div class="bar"><span class="tile-title"></span>
            <span class="tile-btns"><button type="button" class="small enlarge" aria-pressed="false" aria-label="Enlarge ${escapeHtml(t.drone)} ${t.kind}" title="Enlarge (Esc puts it back)">⤢</button>
            <button type="button" class="small close" aria-label="Close ${escapeHtml(t.drone)} ${t.kind}" title="Close">✕</button></span></div>
          <div class="screen"><video autoplay muted playsinline></video>${t.kind === "thermal" ? `<canvas class="thermal" aria-label="Thermal video in false colour"></canvas>
            <div class="scale"><span>${THERMAL_SPAN_C[0]} °C</span><span class="bar-colours" style="background:${PALETTE_CSS}"></span><span>${THERMAL_SPAN_C[1]} °C</span></div>` : ""}
            <p class="waiting">No video: the drone is not in the air. The tile waits for it.</p></div>`;
      } else {
        el.className = "tile empty";
        el.innerHTML = allEmpty
          ? `<p class="muted">No video on the wall: pick a live feed above, or click a flying drone on the map. The wall is kept across reloads.</p>`
          : `<p class="muted">Empty tile: pick a live feed above, or click a flying drone on the map.</p>`;
      }
    }
    el.style.order = String(k);
    if (!el.parentNode) box.appendChild(el);
    if (t) {
      el.querySelector(".tile-title").innerHTML = tileTitleHtml(t);
      el.classList.toggle("enlarged", Wall.enlarged === keyOf(t));
      el.querySelector(".enlarge").setAttribute("aria-pressed", String(Wall.enlarged === keyOf(t)));
      el.querySelector(".enlarge").textContent = Wall.enlarged === keyOf(t) ? "⤡ Back to the wall" : "⤢";
    }
  });
  document.body.classList.toggle("wall-enlarged", !!Wall.enlarged);
  connectAll();
};

function updateTitles() {
  for (const t of Wall.tiles) {
    if (!t) continue;
    const el = document.querySelector(`.feed[data-feed="${CSS.escape(keyOf(t))}"] .tile-title`);
    if (el) el.innerHTML = tileTitleHtml(t);
  }
}

async function connectAll() {
  for (const t of Wall.tiles) {
    if (!t) continue;
    const key = keyOf(t);
    const el = document.querySelector(`.feed[data-feed="${CSS.escape(key)}"]`);
    if (!el) continue;
    const live = Wall.feeds.has(key);
    el.classList.toggle("no-video", !live);
    if (live && !Wall.viewers.has(key)) {
      const entry = { viewer: null, closed: false };
      Wall.viewers.set(key, entry);
      try {
        const v = await watchFeed(Cmd.api, t.drone, t.kind, el.querySelector("video"));
        if (entry.closed) v.close(); else entry.viewer = v;
      } catch (err) {
        Wall.viewers.delete(key);
        Cmd.error(err);
      }
    } else if (!live && Wall.viewers.has(key)) stopViewer(key);
  }
}

function stopViewer(key) {
  const entry = Wall.viewers.get(key);
  if (!entry) return;
  Wall.viewers.delete(key);
  entry.closed = true;
  entry.viewer?.close();
}

Wall.refreshFeeds = async () => {
  const feeds = await Cmd.api.call("GET", "/api/v1/video/feeds").catch(() => []);
  Wall.feeds.clear();
  for (const f of feeds) Wall.feeds.set(`${f.drone_id}/${f.kind}`, f);
  const label = (f) => { const inc = Cmd.incidentOfDrone(f.drone_id); return `${f.drone_id} ${f.kind}${inc ? ` · ${inc.id}` : ""}`; };
  $("available").innerHTML = feeds.length
    ? `<span class="muted">Live:</span> ` + feeds.map((f) => `<button type="button" class="small feed-btn ${f.kind}" data-open="${escapeHtml(f.drone_id)}" data-kind="${f.kind}">${escapeHtml(label(f))}</button>`).join("")
    : '<span class="muted">No drone is streaming.</span>';
  connectAll();
};

// Thermal tiles: grey video → palette, drawn about 12 times a second.
let lastPaint = 0;
const scratch = document.createElement("canvas");
function paintThermal(now) {
  requestAnimationFrame(paintThermal);
  if (now - lastPaint < 80) return;
  lastPaint = now;
  for (const el of document.querySelectorAll(".feed.kind-thermal")) {
    const video = el.querySelector("video"), canvas = el.querySelector("canvas.thermal");
    if (!video || !canvas || !video.videoWidth || video.readyState < 2) continue;
    const w = video.videoWidth, h = video.videoHeight;
    if (canvas.width !== w) { canvas.width = w; canvas.height = h; }
    scratch.width = w; scratch.height = h;
    const sctx = scratch.getContext("2d", { willReadFrequently: true });
    sctx.drawImage(video, 0, 0, w, h);
    const img = sctx.getImageData(0, 0, w, h);
    const px = img.data;
    for (let p = 0; p < px.length; p += 4) {
      const v = (px[p] * 77 + px[p + 1] * 150 + px[p + 2] * 29) >> 8;
      px[p] = PALETTE[v * 3]; px[p + 1] = PALETTE[v * 3 + 1]; px[p + 2] = PALETTE[v * 3 + 2];
    }
    canvas.getContext("2d").putImageData(img, 0, 0);
    canvas.dataset.painted = String(Number(canvas.dataset.painted || 0) + 1);
  }
}
requestAnimationFrame(paintThermal);

// --- wiring ----------------------------------------------------------------------------------------------------------

$("available").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-open]");
  if (b) Wall.add(b.dataset.open, b.dataset.kind);
});
$("feeds").addEventListener("click", (e) => {
  const b = e.target.closest("button");
  const el = e.target.closest(".feed");
  if (!b || !el) return;
  if (b.classList.contains("close")) Wall.remove(el.dataset.feed);
  else if (b.classList.contains("enlarge")) { Wall.enlarged = Wall.enlarged === el.dataset.feed ? null : el.dataset.feed; Wall.render(); b.focus(); }
});
document.querySelector(".layout-btns").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-layout]");
  if (b) Wall.setLayout(Number(b.dataset.layout));
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && Wall.enlarged && !document.querySelector("dialog[open]")) {
    const key = Wall.enlarged;
    Wall.enlarged = null; Wall.render();
    document.querySelector(`.feed[data-feed="${CSS.escape(key)}"] .enlarge`)?.focus();
  }
});

Cmd.onDroneClick = (id) => {
  const d = Cmd.drones.get(id);
  if (Wall.feeds.has(`${id}/visible`)) Wall.add(id, "visible");
  else Cmd.toast(`${id} has no live video (${d ? Cmd.STATE_LABEL[d.state] || d.state : "unknown"}: not in the air).`, "info");
};

Wall.init = () => { restore(); Wall.render(); };
Cmd.onReload(async () => { updateTitles(); await Wall.refreshFeeds(); });
Cmd.on((ev) => {
  if (ev.type === "video.feeds") Wall.refreshFeeds().catch(Cmd.error);
  else if (ev.type === "drone.updated" || ev.type.startsWith("mission.") || ev.type.startsWith("incident.")) updateTitles();
});
setInterval(() => { if (Cmd.api) updateTitles(); }, 3000);  // altitude and battery from telemetry
