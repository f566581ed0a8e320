// Evidence playback: a recording's segments in a <video>, and a Leaflet map whose marker follows the recorded
// position as the video plays (telemetry sidecars), with the hotspot marks made during the flight.
//
//   const player = await openEvidencePlayer(container, recordingId, api);   // api: an ApiClient (bearer token)
//   player.close();
//
// Segments are fetched with the bearer token (a <video> cannot send one) and played from blob URLs, one after the
// other; the next segment is fetched while the current one plays. Clicking the track seeks to that moment.
// Needs Leaflet (L) on the page. Every fetch is logged server-side in the evidence audit (who, when).
"use strict";

async function openEvidencePlayer(container, recordingId, api) {
  const id = encodeURIComponent(recordingId);
  const [rec, track] = await Promise.all([
    api.call("GET", `/api/v1/evidence/recordings/${id}`),
    api.call("GET", `/api/v1/evidence/recordings/${id}/track`),
  ]);
  let uiConfig = null;
  try { uiConfig = await api.call("GET", "/api/v1/ui-config"); } catch (e) { /* no basemap: the track alone */ }

  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const root = document.createElement("section");
  root.className = "evp";
  root.setAttribute("aria-label", `Recording ${rec.id}`);
  root.innerHTML = `
    <header class="evp-head">
      <h2 class="evp-title">${esc(rec.drone_id)} · ${esc(rec.kind)} · ${esc(rec.id)}</h2>
      <p class="evp-meta">Mission ${esc(rec.mission_id || "–")} · incident ${esc(rec.incident_id || "–")} ·
        ${esc(rec.started_at)} → ${esc(rec.ended_at || "recording")} · ${rec.segments.length} segment(s) ·
        signed by key <code>${esc(rec.key_id)}</code>${rec.gaps.length ? ` · <strong>${rec.gaps.length} gap(s)</strong>` : ""}</p>
    </header>
    <div class="evp-body">
      <div class="evp-video-wrap">
        <video class="evp-video" controls playsinline muted></video>
        <div class="evp-segments" role="group" aria-label="Segments"></div>
        <p class="evp-status" aria-live="polite"></p>
      </div>
      <div class="evp-map-wrap">
        <div class="evp-map" role="region" aria-label="Recorded position"></div>
        <p class="evp-pose" aria-live="off">No position yet</p>
        <ul class="evp-marks" aria-label="Hotspot marks"></ul>
      </div>
    </div>`;
  container.appendChild(root);
  const video = root.querySelector(".evp-video");
  const status = root.querySelector(".evp-status");
  const poseText = root.querySelector(".evp-pose");

  // --- the map -----------------------------------------------------------------------------------------
  const poses = track.poses.filter((p) => p.lat != null && p.lon != null).sort((a, b) => a.t - b.t);
  const centre = poses.length ? [poses[0].lat, poses[0].lon] : (uiConfig ? uiConfig.centre : [0, 0]);
  const map = L.map(root.querySelector(".evp-map"), { zoomControl: true }).setView(centre, 16);
  const basemap = uiConfig && uiConfig.basemap;
  if (basemap && basemap.url) {
    L.tileLayer(basemap.url, { attribution: basemap.attribution || "", minZoom: basemap.min_zoom ?? 0, maxZoom: basemap.max_zoom ?? 19 }).addTo(map);
  }
  const line = poses.length ? L.polyline(poses.map((p) => [p.lat, p.lon]), { color: "#1d4ed8", weight: 3 }).addTo(map) : null;
  if (line && poses.length > 1) map.fitBounds(line.getBounds(), { padding: [20, 20], maxZoom: 18 });
  const marker = L.circleMarker(centre, { radius: 8, color: "#111827", weight: 2, fillColor: "#f59e0b", fillOpacity: 1 }).addTo(map);
  const marksList = root.querySelector(".evp-marks");
  for (const m of track.marks) {
    if (m.lat == null || m.lon == null) continue;
    L.circleMarker([m.lat, m.lon], { radius: 6, color: "#b91c1c", fillColor: "#ef4444", fillOpacity: 0.8 })
      .bindTooltip(`${esc(m.hotspot_id)} ${esc(m.kind || "")} (${esc(m.event)})`).addTo(map);
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${m.hotspot_id || "mark"} at ${new Date(m.t * 1000).toISOString().slice(11, 19)}Z`;
    b.addEventListener("click", () => seekTo(m.t));
    li.appendChild(b);
    marksList.appendChild(li);
  }

  function poseAt(t) {
    if (!poses.length) return null;
    let lo = 0, hi = poses.length - 1;
    if (t <= poses[0].t) return poses[0];
    if (t >= poses[hi].t) return poses[hi];
    while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (poses[mid].t <= t) lo = mid; else hi = mid; }
    const a = poses[lo], b = poses[hi], f = (t - a.t) / Math.max(1e-9, b.t - a.t);
    return { ...a, lat: a.lat + (b.lat - a.lat) * f, lon: a.lon + (b.lon - a.lon) * f,
             alt_m: a.alt_m != null && b.alt_m != null ? a.alt_m + (b.alt_m - a.alt_m) * f : a.alt_m };
  }

  // --- the segments ----------------------------------------------------------------------------------
  const segs = rec.segments;
  const blobs = new Map();
  let current = -1;
  let closed = false;
  const buttons = segs.map((s, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `${s.index}: ${s.start.slice(11, 19)}Z`;
    b.title = `${s.frames} frames, ${s.duration_s} s, SHA-256 ${s.sha256.slice(0, 16)}…`;
    b.addEventListener("click", () => load(i, 0, true));
    root.querySelector(".evp-segments").appendChild(b);
    return b;
  });

  async function blobUrl(i) {
    if (!blobs.has(i)) {
      blobs.set(i, api.raw("GET", segs[i].url).then((r) => r.blob()).then((b) => URL.createObjectURL(b)));
    }
    return blobs.get(i);
  }

  async function load(i, offset, play) {
    if (i < 0 || i >= segs.length) return;
    status.textContent = `Loading segment ${segs[i].index}…`;
    const url = await blobUrl(i);
    if (current !== i) {
      current = i;
      video.src = url;
      await new Promise((res) => video.addEventListener("loadedmetadata", res, { once: true }));
    }
    video.currentTime = Math.max(0, offset || 0);
    buttons.forEach((b, n) => b.setAttribute("aria-pressed", String(n === i)));
    status.textContent = `Segment ${segs[i].index} of ${segs.length}`;
    if (i + 1 < segs.length) blobUrl(i + 1);  // fetch ahead
    follow();
    if (play) { try { await video.play(); } catch (e) { /* autoplay refused: the controls are there */ } }
  }

  function nowUnix() {
    return current < 0 ? null : segs[current].start_unix + video.currentTime;
  }

  function follow() {
    if (closed) return;
    const t = nowUnix();
    if (t == null) return;
    const p = poseAt(t);
    if (!p) return;
    marker.setLatLng([p.lat, p.lon]);
    if (!map.getBounds().pad(-0.1).contains(marker.getLatLng())) map.panTo(marker.getLatLng(), { animate: false });
    const fmt = (v, d, u) => (v == null ? "–" : `${Number(v).toFixed(d)}${u}`);
    poseText.textContent = `${new Date(t * 1000).toISOString().slice(11, 23)}Z · ${p.lat.toFixed(6)}, ${p.lon.toFixed(6)} · ` +
      `alt ${fmt(p.alt_m, 1, " m")} · heading ${fmt(p.heading_deg, 0, "°")} · gimbal ${fmt(p.gimbal_pitch_deg, 0, "°")}`;
  }

  function seekTo(t) {
    let i = segs.findIndex((s, n) => t >= s.start_unix && (n + 1 >= segs.length || t < segs[n + 1].start_unix));
    if (i < 0) i = 0;
    load(i, t - segs[i].start_unix, !video.paused);
  }

  video.addEventListener("timeupdate", follow);
  video.addEventListener("seeked", follow);
  video.addEventListener("ended", () => { if (!closed && current + 1 < segs.length) load(current + 1, 0, true); });
  if (line) line.on("click", (e) => {
    let best = null, bestD = Infinity;
    for (const p of poses) { const d = map.distance(e.latlng, [p.lat, p.lon]); if (d < bestD) { bestD = d; best = p; } }
    if (best) seekTo(best.t);
  });
  setTimeout(() => { if (!closed) map.invalidateSize(); }, 0);
  if (segs.length) await load(0, 0, false);
  else status.textContent = "No segment recorded yet";

  return {
    video, map,
    /** The marker's position and the recorded time it shows (for tests and other scripts). */
    position() { const ll = marker.getLatLng(); return { lat: ll.lat, lon: ll.lng, t: nowUnix(), segment: current + 1 }; },
    seek: seekTo,
    close() {
      closed = true;
      video.removeEventListener("timeupdate", follow);
      video.removeEventListener("seeked", follow);
      video.pause();
      video.removeAttribute("src");
      for (const p of blobs.values()) p.then((u) => URL.revokeObjectURL(u)).catch(() => {});
      map.remove();
      root.remove();
    },
  };
}

if (typeof window !== "undefined") window.openEvidencePlayer = openEvidencePlayer;
