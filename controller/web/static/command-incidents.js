// Command console, incidents: the open ones by urgency (grade, then age), a detail view (caller reports, missions
// with ETA and sweep progress, the reasons drones were ruled out, the timeline), opening an incident from the map
// (radius or a drawn polygon for a search), and resolve / cancel / abort / add search drones.
"use strict";

const Inc = { selected: null, detail: null, detailTimer: null, draft: null, drawing: null };
Cmd.inc = Inc;

function urgencyOrder(a, b) {
  return a.grade - b.grade || Date.parse(a.created_at || 0) - Date.parse(b.created_at || 0);
}

function dronesSummary(i) {
  const ms = Cmd.activeMissionsOf(i.id);
  if (!ms.length) return { text: i.status === "queued" ? "no drone yet" : "—", eta: null };
  const etas = ms.filter((m) => !["returning", "on_scene"].includes(m.state)).map((m) => Cmd.etaOf(m));
  const eta = etas.length ? Math.min(...etas) : null;
  const text = ms.map((m) => `${m.drone_id} ${(Cmd.MISSION_LABEL[m.state] || m.state).toLowerCase()}`).join(", ");
  return { text, eta, count: ms.length };
}

function etaText(s) {
  return s == null || s <= 0 ? "" : `ETA ${fmtDuration(s)}`;
}

Inc.renderList = () => {
  const list = $("incident-list");
  const open = [...Cmd.incidents.values()].sort(urgencyOrder);
  $("incident-count").textContent = open.length ? String(open.length) : "";
  $("incident-empty").hidden = open.length > 0;
  const now = Date.now();
  const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement.closest("li")?.dataset.incident : null;
  list.innerHTML = open.map((i) => {
    const ds = dronesSummary(i);
    const sel = i.id === Inc.selected;
    return `<li class="incident-row grade-${i.grade}${sel ? " selected" : ""}" data-incident="${escapeHtml(i.id)}">
      <button type="button" class="row-btn" aria-pressed="${sel}">
        <span class="grade g${i.grade}" title="grade ${i.grade}: ${Cmd.GRADE_LABEL[i.grade] || ""}"><span class="sr-only">Grade </span>${i.grade}</span>
        <span class="row-main">
          <span class="row-title">${escapeHtml(CATEGORY_LABEL[i.category] || i.category)} <span class="muted id">${escapeHtml(i.id)}</span></span>
          <span class="row-sub"><span class="status st-${i.status}" data-field="status">${escapeHtml(Cmd.STATUS_LABEL[i.status] || i.status)}</span>
            <span data-field="age">${Cmd.ageText(i.created_at, now)}</span>
            <span data-field="drones">${escapeHtml(ds.text)}</span>
            <b data-field="eta">${etaText(ds.eta)}</b></span>
          ${i.blocked_reason ? `<span class="row-warn">${escapeHtml(i.blocked_reason)}</span>` : ""}
        </span>
      </button></li>`;
  }).join("");
  if (focused) list.querySelector(`li[data-incident="${CSS.escape(focused)}"] button`)?.focus();
};

$("incident-list").addEventListener("click", (e) => {
  const li = e.target.closest("li[data-incident]");
  if (li) Cmd.selectIncident(li.dataset.incident, { pan: true });
});

Cmd.selectIncident = (id, { pan = false } = {}) => {
  Inc.selected = id;
  Inc.renderList();
  const i = Cmd.incidents.get(id);
  if (pan && i) {  // zoom to the scene (and its search area) so drones, strips and progress can be told apart
    const area = Cmd.mapView.incidentLayers.get(id)?.area;
    const map = Cmd.mapView.map;
    if (area) map.fitBounds(area.getBounds(), { padding: [40, 40], maxZoom: 16, animate: false });
    else map.setView([i.lat, i.lon], Math.max(map.getZoom(), 15), { animate: false });
  }
  Inc.loadDetail();
};

Inc.loadDetail = async () => {
  const id = Inc.selected;
  if (!id) { $("incident-detail").hidden = true; return; }
  try {
    const detail = await Cmd.api.call("GET", `/api/v1/incidents/${encodeURIComponent(id)}`);
    if (Inc.selected !== id) return;
    Inc.detail = detail;
    for (const m of detail.missions || []) Cmd.upsertMission(m);
    Inc.renderDetail();
  } catch (err) { Cmd.error(err); }
};

Inc.scheduleDetail = () => {
  clearTimeout(Inc.detailTimer);
  Inc.detailTimer = setTimeout(() => Inc.loadDetail(), 250);
};

function ruledOut(detail) {
  const out = [];
  const reasons = detail.ruled_out || detail.queue_reasons || {};
  if (Array.isArray(reasons)) for (const r of reasons) out.push([r.drone_id || r.id || "", r.reason || r.text || ""]);
  else for (const [k, v] of Object.entries(reasons)) out.push([k, v]);
  for (const m of detail.missions || []) {
    if (["declined", "expired", "aborted"].includes(m.state)) {
      out.push([m.drone_id, `${Cmd.MISSION_LABEL[m.state]}${m.decided_by ? " by " + m.decided_by : ""}${m.reason ? ": " + m.reason : ""}`]);
    }
  }
  return out;
}

Inc.renderDetail = () => {
  const d = Inc.detail;
  const box = $("incident-detail");
  if (!d) { box.hidden = true; return; }
  const open = Cmd.OPEN.has(d.status);
  const missions = (d.missions || []).map((m) => Cmd.missions.get(m.id) || m);
  const active = missions.filter((m) => Cmd.ACTIVE_MISSION.has(m.state));
  const search = d.category === "missing_person";
  const area = d.search_area ? (d.search_area.polygon ? `drawn area, ${d.search_area.polygon.length - 1} corners` : `radius ${fmtDistance(d.search_area.radius_m)}`) : "";
  const reasons = ruledOut(d);
  Cmd.ev?.beforeDetail();  // command-evidence.js: its recordings section is moved into the new rendering below
  box.hidden = false;
  box.innerHTML = `
    <div class="detail-head grade-${d.grade}">
      <h3><span class="grade g${d.grade}">${d.grade}</span> ${escapeHtml(CATEGORY_LABEL[d.category] || d.category)} <span class="muted id">${escapeHtml(d.id)}</span></h3>
      <button type="button" class="small close-detail" aria-label="Close the incident detail">✕</button>
    </div>
    <p class="facts-line"><span class="status st-${d.status}">${escapeHtml(Cmd.STATUS_LABEL[d.status] || d.status)}</span>
      grade ${d.grade} (${Cmd.GRADE_LABEL[d.grade] || ""}) · opened ${Cmd.timeText(d.created_at)} (${Cmd.ageText(d.created_at)} ago) · ${d.callers} caller${d.callers === 1 ? "" : "s"}</p>
    ${d.address ? `<p>${escapeHtml(d.address)}</p>` : ""}
    ${d.description ? `<p class="description">${escapeHtml(d.description)}</p>` : ""}
    ${area ? `<p>Search area: ${escapeHtml(area)}</p>` : ""}
    ${d.blocked_reason ? `<p class="row-warn">${escapeHtml(d.blocked_reason)}</p>` : ""}
    ${d.close_reason ? `<p class="muted">Closed: ${escapeHtml(d.close_reason)}</p>` : ""}
    ${open ? `<div class="detail-actions">
      <button type="button" class="ok-action" data-action="resolve">Resolve…</button>
      <button type="button" class="danger-action" data-action="cancel">Cancel incident…</button>
      ${search ? `<span class="add-search"><label for="add-count">Add</label>
        <select id="add-count">${[1, 2, 3, 4].map((n) => `<option>${n}</option>`).join("")}</select>
        <button type="button" class="small primary" data-action="add-search">search drones</button></span>` : ""}
    </div>` : ""}
    <h4>Drones</h4>
    ${active.length ? `<table class="missions"><thead><tr><th>Drone</th><th>State</th><th>ETA</th><th>Sweep</th><th></th></tr></thead><tbody>
      ${active.map((m) => {
        const p = m.plan;
        const stop = p ? (p.end ?? p.waypoints.length) : 0;
        const sweep = p ? `strip ${p.strip + 1}/${p.strips}, ${stop ? Math.round((100 * Math.min(p.done, stop)) / stop) : 0}%` : "";
        return `<tr data-mission="${escapeHtml(m.id)}"><td>${escapeHtml(m.drone_id)}<br><span class="muted">${escapeHtml(m.station_id)}</span></td>
          <td>${escapeHtml(Cmd.MISSION_LABEL[m.state] || m.state)}</td><td>${m.state === "returning" ? "" : etaText(Cmd.etaOf(m))}</td>
          <td>${escapeHtml(sweep)}</td>
          <td><button type="button" class="small danger-action" data-action="abort" data-mission="${escapeHtml(m.id)}" data-drone="${escapeHtml(m.drone_id)}">Abort…</button></td></tr>`;
      }).join("")}</tbody></table>` : `<p class="muted">No drone on it.</p>`}
    <div class="rec-slot"></div>
    ${reasons.length ? `<h4>Ruled out</h4><ul class="ruled-out">${reasons.map(([k, v]) => `<li><b>${escapeHtml(k)}</b> ${escapeHtml(v)}</li>`).join("")}</ul>` : ""}
    <h4>Caller reports</h4>
    ${(d.reports || []).length ? `<ul class="reports">${d.reports.map((r) => `<li><span class="muted">${Cmd.timeText(r.received_at)}</span> ${r.caller ? `<b>${escapeHtml(r.caller)}</b>: ` : ""}${escapeHtml(r.text || "(no text)")}</li>`).join("")}</ul>` : `<p class="muted">No caller report.</p>`}
    <h4>Timeline</h4>
    <ol class="timeline">${(d.timeline || []).map((t) => `<li><span class="muted">${Cmd.timeText(t.at)}</span> ${escapeHtml(t.from ? `${t.from} → ${t.to}` : t.to)}${t.reason ? ` · ${escapeHtml(t.reason)}` : ""}${t.actor && t.actor !== "system" ? ` <span class="muted">(${escapeHtml(t.actor)})</span>` : ""}</li>`).join("")}</ol>`;
  const slot = box.querySelector(".rec-slot");
  if (Cmd.ev) Cmd.ev.attachTo(slot, d.id); else slot.remove();
};

$("incident-detail").addEventListener("click", (e) => {
  const b = e.target.closest("button");
  if (!b) return;
  if (b.classList.contains("close-detail")) { Inc.selected = null; Inc.detail = null; $("incident-detail").hidden = true; Inc.renderList(); return; }
  const d = Inc.detail;
  if (!d) return;
  const path = `/api/v1/incidents/${encodeURIComponent(d.id)}`;
  const label = `${CATEGORY_LABEL[d.category] || d.category} ${d.id}`;
  if (b.dataset.action === "resolve") {
    Cmd.confirm({
      title: `Resolve ${label}?`, ok: "Resolve", danger: false, reason: "Note (optional)",
      body: "The incident closes as handled; drones over the scene fly home. This cannot be undone.",
      run: (reason) => Cmd.api.call("POST", `${path}/resolve`, { reason }),
    });
  } else if (b.dataset.action === "cancel") {
    Cmd.confirm({
      title: `Cancel ${label}?`, ok: "Cancel incident", reason: "Reason (optional)",
      body: "Offers are withdrawn and drones in the air come home. This cannot be undone.",
      run: (reason) => Cmd.api.call("POST", `${path}/cancel`, { reason }),
    });
  } else if (b.dataset.action === "abort") {
    Cmd.confirm({
      title: `Abort ${b.dataset.drone}'s mission?`, ok: "Abort mission", reason: "Reason (required)", reasonRequired: true,
      body: "The drone stops and flies home; the incident gets another drone if it still needs one. This cannot be undone.",
      run: (reason) => Cmd.api.call("POST", `/api/v1/missions/${encodeURIComponent(b.dataset.mission)}/abort`, { reason }),
    });
  } else if (b.dataset.action === "add-search") {
    const count = Number($("add-count").value);
    b.disabled = true;
    Cmd.api.call("POST", `${path}/search-drones`, { count })
      .then(() => Cmd.toast(`${count} search drone${count > 1 ? "s" : ""} requested for ${d.id}`, "info"))
      .catch(Cmd.error).finally(() => { b.disabled = false; });
  }
});

// --- opening an incident from the map -----------------------------------------------------------------------------

Cmd.onMapClick = (e) => {
  if (Inc.drawing) { addCorner(e.latlng); return; }
  const html = `<div class="map-popup"><b>${e.latlng.lat.toFixed(5)}, ${e.latlng.lng.toFixed(5)}</b><br>
    <button type="button" class="small primary open-here">Open incident here…</button></div>`;
  const popup = L.popup({ closeButton: true, autoPan: false }).setLatLng(e.latlng).setContent(html).openOn(Cmd.mapView.map);
  const btn = popup.getElement().querySelector(".open-here");
  btn.onclick = () => {
    popup.remove();
    if (!Inc.drawing && !$("new-incident").open) Inc.openForm(e.latlng.lat, e.latlng.lng);
  };
  btn.focus();
};

Inc.openForm = (lat, lon) => {
  Inc.draft = { lat, lon, polygon: null };
  $("ni-form").reset();
  $("ni-where").textContent = `At ${lat.toFixed(5)}, ${lon.toFixed(5)}`;
  $("ni-error").textContent = "";
  $("ni-polygon-note").textContent = "";
  updateAreaVisibility();
  $("new-incident").showModal();
  $("ni-category").focus();
};

function updateAreaVisibility() {
  $("ni-area").hidden = $("ni-category").value !== "missing_person";
}

$("ni-category").innerHTML = Object.entries(CATEGORY_LABEL).map(([k, v]) => `<option value="${k}">${escapeHtml(v)}</option>`).join("");
$("ni-category").addEventListener("change", updateAreaVisibility);
$("ni-cancel").onclick = () => { $("new-incident").close(); clearDrawing(); Inc.draft = null; };
$("new-incident").addEventListener("cancel", () => { clearDrawing(); Inc.draft = null; });
$("new-incident-btn").onclick = () => {
  const c = Cmd.mapView.map.getCenter();
  Cmd.toast("Click the map where it happened (or use the centre of the map: opening the form now).", "info");
  Inc.openForm(c.lat, c.lng);
};

$("ni-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const draft = Inc.draft;
  if (!draft) return;
  const body = {
    category: $("ni-category").value, grade: Number($("ni-grade").value), lat: draft.lat, lon: draft.lon,
    description: $("ni-description").value.trim(),
  };
  const caller = $("ni-caller").value.trim();
  if (caller) body.caller = caller;
  const address = $("ni-address").value.trim();
  if (address) body.address = address;
  if (body.category === "missing_person") {
    const kind = document.querySelector("input[name=ni-area-kind]:checked").value;
    if (kind === "polygon") {
      if (!draft.polygon) { $("ni-error").textContent = "Draw the search area on the map first (or choose a radius)."; return; }
      body.search_polygon = draft.polygon;
    } else body.search_radius_m = Number($("ni-radius").value);
  }
  $("ni-submit").disabled = true;
  try {
    const inc = await Cmd.api.call("POST", "/api/v1/incidents", body);
    $("new-incident").close();
    clearDrawing();
    Inc.draft = null;
    Cmd.incidents.set(inc.id, inc);
    Cmd.selectIncident(inc.id);
    if (inc.merged) Cmd.toast(`Merged into the open incident ${inc.id} (a repeat call).`, "info");
  } catch (err) {
    $("ni-error").textContent = err.message;
  } finally { $("ni-submit").disabled = false; }
});

// Drawing the search polygon: click corners, double-click or Finish closes it, Backspace undoes, Esc cancels.
$("ni-draw").onclick = () => {
  document.querySelector("input[name=ni-area-kind][value=polygon]").checked = true;
  $("new-incident").close();
  clearDrawing();
  const map = Cmd.mapView.map;
  Inc.drawing = {
    corners: [],
    line: L.polyline([], { color: "#ffd34d", weight: 3, interactive: false }).addTo(map),
    dots: L.layerGroup().addTo(map),
  };
  map.doubleClickZoom.disable();
  map.getContainer().classList.add("drawing");
  $("draw-bar").hidden = false;
  $("draw-help").textContent = "Click the corners of the search area; double-click or Finish to close it.";
  $("draw-finish").focus();
};

function addCorner(latlng) {
  const dr = Inc.drawing;
  const map = Cmd.mapView.map;
  const p = map.latLngToContainerPoint(latlng);
  const last = dr.corners[dr.corners.length - 1];
  if (last && map.latLngToContainerPoint(last).distanceTo(p) < 6) return;  // the second click of a double-click
  dr.corners.push(latlng);
  redrawCorners();
}

function redrawCorners() {
  const dr = Inc.drawing;
  dr.line.setLatLngs(dr.corners.length > 2 ? [...dr.corners, dr.corners[0]] : dr.corners);
  dr.dots.clearLayers();
  for (const c of dr.corners) L.circleMarker(c, { radius: 5, color: "#111", weight: 2, fillColor: "#ffd34d", fillOpacity: 1, interactive: false }).addTo(dr.dots);
  $("draw-help").textContent = `${dr.corners.length} corner${dr.corners.length === 1 ? "" : "s"}: ` +
    (dr.corners.length < 3 ? "click at least 3." : "double-click or Finish to close the area.");
}

function clearDrawing() {
  const dr = Inc.drawing;
  if (!dr) return;
  dr.line.remove(); dr.dots.remove();
  Inc.drawing = null;
  const map = Cmd.mapView.map;
  map.doubleClickZoom.enable();
  map.getContainer().classList.remove("drawing");
  $("draw-bar").hidden = true;
}

function finishDrawing() {
  const dr = Inc.drawing;
  if (!dr) return;
  if (dr.corners.length < 3) { $("draw-help").textContent = "A search area needs at least 3 corners."; return; }
  const ring = dr.corners.map((c) => [c.lng, c.lat]);
  ring.push(ring[0]);
  Inc.draft.polygon = ring;
  const areaKm2 = polygonAreaM2(dr.corners) / 1e6;
  clearDrawing();
  $("ni-polygon-note").textContent = `${ring.length - 1} corners, ${areaKm2 < 0.1 ? Math.round(areaKm2 * 1e6) + " m²" : areaKm2.toFixed(2) + " km²"}`;
  Inc.previewPolygon?.remove();
  Inc.previewPolygon = L.polygon(dr.corners, { color: "#ffd34d", weight: 2, dashArray: "4 4", fillOpacity: 0.05, interactive: false }).addTo(Cmd.mapView.map);
  $("new-incident").showModal();
  $("ni-submit").focus();
}

function polygonAreaM2(corners) {
  const lat0 = corners[0].lat * Math.PI / 180, R = 6371008.8;
  const xy = corners.map((c) => [c.lng * Math.PI / 180 * R * Math.cos(lat0), c.lat * Math.PI / 180 * R]);
  let a = 0;
  for (let k = 0; k < xy.length; k++) { const [x1, y1] = xy[k], [x2, y2] = xy[(k + 1) % xy.length]; a += x1 * y2 - x2 * y1; }
  return Math.abs(a) / 2;
}

Cmd.onMapDblClick = () => { if (Inc.drawing) finishDrawing(); };
$("draw-finish").onclick = finishDrawing;
$("draw-undo").onclick = () => { if (Inc.drawing) { Inc.drawing.corners.pop(); redrawCorners(); } };
$("draw-cancel").onclick = () => { clearDrawing(); if (Inc.draft) $("new-incident").showModal(); };
document.addEventListener("keydown", (e) => {
  if (!Inc.drawing) return;
  if (e.key === "Escape") { e.preventDefault(); $("draw-cancel").click(); }
  else if (e.key === "Enter" && e.target.tagName !== "BUTTON") { e.preventDefault(); finishDrawing(); }
  else if (e.key === "Backspace") { e.preventDefault(); $("draw-undo").click(); }
});
$("new-incident").addEventListener("close", () => { if (!Inc.drawing) { Inc.previewPolygon?.remove(); Inc.previewPolygon = null; } });

// --- live -----------------------------------------------------------------------------------------------------------

Cmd.onReload(async () => { Inc.renderList(); if (Inc.selected) Inc.loadDetail(); });
Cmd.on((ev) => {
  const t = ev.type;
  if (t.startsWith("incident.") || t.startsWith("mission.") || t === "offer.ended" || t === "drone.updated") Inc.renderList();
  const id = ev.incident_id || (t.startsWith("incident.") ? ev.data?.id : null);
  if (Inc.selected && id === Inc.selected && t !== "drone.telemetry") Inc.scheduleDetail();
});
setInterval(() => { if (Cmd.api) Inc.renderList(); }, 5000);  // ages and ETAs tick
