// Command console, the map: basemap (XYZ or the controller's MBTiles), legend, stations, drones (idle ones
// clustered, flying ones big with a pulsing ring, a label and a track), incidents with their search area, strips
// and sweep progress, no-fly zones, and a first view that fits the fleet and the zones.
"use strict";

const MapView = {
  map: null,
  idle: null,        // L.MarkerClusterGroup of drones on the ground
  flying: null,      // L.LayerGroup of airborne drones
  tracks: null,      // L.LayerGroup of polylines
  areas: null,       // L.LayerGroup of search areas and strips
  markers: new Map(),    // drone id -> L.Marker
  trackLines: new Map(), // drone id -> {line, points}
  incidentLayers: new Map(), // incident id -> {marker, area, strips: L.LayerGroup}
  nofly: null,
  fitted: false,
};
Cmd.mapView = MapView;
const TRACK_POINTS = 600;

function droneHtml(d) {
  const flying = Cmd.AIRBORNE.has(d.state);
  const colour = Cmd.STATE_COLOUR[d.state] || "#ccc";
  const cls = flying ? "drone-dot flying" : "drone-dot";
  return `<span class="${cls}" data-drone="${escapeHtml(d.id)}" data-state="${escapeHtml(d.state)}" style="background:${colour}"></span>`;
}

function droneIcon(d) {
  const flying = Cmd.AIRBORNE.has(d.state);
  const size = flying ? 26 : 14;
  return L.divIcon({ className: "drone-icon", html: droneHtml(d), iconSize: [size, size], iconAnchor: [size / 2, size / 2] });
}

function droneLabel(d) {
  const flying = Cmd.AIRBORNE.has(d.state);
  const alt = d.alt_rel_m ?? (flying ? d.alt_m : null);
  const inc = flying ? null : Cmd.incidentOfDrone(d.id);  // a flying drone's label stays short; its tile says more
  return [
    d.id, Cmd.STATE_LABEL[d.state] || d.state,
    alt != null ? `${Math.round(alt)} m` : null,
    d.battery_pct != null ? `${Math.round(d.battery_pct)}%` : null,
    inc ? inc.id : null,
  ].filter(Boolean).join(" · ");
}

function placeDrone(d) {
  let marker = MapView.markers.get(d.id);
  const flying = Cmd.AIRBORNE.has(d.state);
  if (!marker) {
    marker = L.marker([d.lat, d.lon], { icon: droneIcon(d), keyboard: false, title: "" });
    marker._droneState = d.state;
    marker._flying = flying;
    marker.bindTooltip(droneLabel(d), flying ? { permanent: true, direction: "right", offset: [14, 0], className: "flying-label" } : { direction: "top" });
    marker.on("click", () => Cmd.onDroneClick && Cmd.onDroneClick(d.id));
    (flying ? MapView.flying : MapView.idle).addLayer(marker);
    MapView.markers.set(d.id, marker);
    if (flying) marker.setZIndexOffset(1000);
    return;
  }
  if (marker._flying !== flying) {  // took off or landed: move between the cluster and the flying layer
    (marker._flying ? MapView.flying : MapView.idle).removeLayer(marker);
    marker.unbindTooltip();
    marker.setLatLng([d.lat, d.lon]).setIcon(droneIcon(d));
    marker.bindTooltip(droneLabel(d), flying ? { permanent: true, direction: "right", offset: [14, 0], className: "flying-label" } : { direction: "top" });
    marker._flying = flying; marker._droneState = d.state;
    (flying ? MapView.flying : MapView.idle).addLayer(marker);
    marker.setZIndexOffset(flying ? 1000 : 0);
    if (!flying) clearTrack(d.id);
    return;
  }
  const moved = !marker.getLatLng().equals([d.lat, d.lon]);
  if (marker._droneState !== d.state) { marker.setIcon(droneIcon(d)); marker._droneState = d.state; if (!flying) MapView.idle.refreshClusters(marker); }
  if (moved) {
    if (flying) marker.setLatLng([d.lat, d.lon]);
    else { MapView.idle.removeLayer(marker); marker.setLatLng([d.lat, d.lon]); MapView.idle.addLayer(marker); }
  }
  marker.setTooltipContent(droneLabel(d));
  if (flying && moved) addTrackPoint(d.id, d.lat, d.lon);
}

function addTrackPoint(id, lat, lon) {
  let t = MapView.trackLines.get(id);
  if (!t) {
    t = { points: [], line: L.polyline([], { color: "#ffffff", weight: 2, opacity: 0.75, dashArray: "1 5", lineCap: "round", interactive: false }) };
    t.line.addTo(MapView.tracks);
    MapView.trackLines.set(id, t);
  }
  t.points.push([lat, lon]);
  if (t.points.length > TRACK_POINTS) t.points.splice(0, t.points.length - TRACK_POINTS);
  t.line.setLatLngs(t.points);
}

function clearTrack(id) {
  const t = MapView.trackLines.get(id);
  if (t) { MapView.tracks.removeLayer(t.line); MapView.trackLines.delete(id); }
}

async function loadTrack(id) {
  // The controller's recent positions, when it offers them (GET /drones/{id}/track); else the track grows from now.
  try {
    const doc = await Cmd.api.call("GET", `/api/v1/drones/${encodeURIComponent(id)}/track?minutes=10`);
    const pts = (Array.isArray(doc) ? doc : doc.points || doc.track || []).map((p) => Array.isArray(p) ? [p[0], p[1]] : [p.lat, p.lon]);
    if (!pts.length) return;
    clearTrack(id);
    for (const [lat, lon] of pts) addTrackPoint(id, lat, lon);
  } catch (err) { /* not available: keep what telemetry gives */ }
}

// --- incidents, search areas, strips ------------------------------------------------------------------------

function incidentIcon(i) {
  const colour = Cmd.GRADE_COLOUR[i.grade] || "#fff";
  return L.divIcon({
    className: "incident-icon",
    html: `<span class="incident-pin" data-incident="${escapeHtml(i.id)}" style="border-color:${colour}"><b style="background:${colour}">${i.grade}</b></span>`,
    iconSize: [30, 30], iconAnchor: [15, 15],
  });
}

function drawIncident(i) {
  let layers = MapView.incidentLayers.get(i.id);
  if (!Cmd.OPEN.has(i.status)) {
    if (layers) { layers.marker.remove(); layers.area?.remove(); layers.strips.remove(); MapView.incidentLayers.delete(i.id); }
    return;
  }
  if (!layers) {
    const marker = L.marker([i.lat, i.lon], { icon: incidentIcon(i), zIndexOffset: 2000, keyboard: false })
      .bindTooltip("", { direction: "top", offset: [0, -14] }).addTo(MapView.map);
    marker.on("click", () => Cmd.selectIncident && Cmd.selectIncident(i.id, { pan: false }));
    layers = { marker, area: null, strips: L.layerGroup().addTo(MapView.areas), key: "" };
    MapView.incidentLayers.set(i.id, layers);
  }
  layers.marker.setLatLng([i.lat, i.lon]).setIcon(incidentIcon(i));
  layers.marker.setTooltipContent(`${i.id} · grade ${i.grade} ${CATEGORY_LABEL[i.category] || i.category} · ${Cmd.STATUS_LABEL[i.status] || i.status}`);
  const key = JSON.stringify(i.search_area || null);
  if (key !== layers.key) {
    layers.area?.remove(); layers.area = null; layers.key = key;
    const a = i.search_area;
    const style = { color: "#ffd34d", weight: 2, dashArray: "6 4", fillColor: "#ffd34d", fillOpacity: 0.08, interactive: false };
    if (a && a.polygon) layers.area = L.polygon(a.polygon.map(([lon, lat]) => [lat, lon]), style).addTo(MapView.areas);
    else if (a && a.radius_m) layers.area = L.circle([i.lat, i.lon], { ...style, radius: a.radius_m }).addTo(MapView.areas);
  }
  drawStrips(i.id);
}

function drawStrips(incidentId) {
  const layers = MapView.incidentLayers.get(incidentId);
  if (!layers) return;
  layers.strips.clearLayers();
  for (const m of Cmd.missionsOf(incidentId)) {
    const p = m.plan;
    if (!p || !p.waypoints || p.waypoints.length < 2 || !Cmd.ACTIVE_MISSION.has(m.state)) continue;
    const stop = p.end ?? p.waypoints.length;
    const done = Math.min(p.done || 0, stop);
    const flown = p.waypoints.slice(0, Math.max(done, 1));
    const left = p.waypoints.slice(Math.max(done - 1, 0), stop);
    if (left.length > 1) L.polyline(left, { color: "#ffd34d", weight: 2, opacity: 0.9, dashArray: "4 6", interactive: false }).addTo(layers.strips);
    if (flown.length > 1) L.polyline(flown, { color: "#39e07a", weight: 4, opacity: 0.95, interactive: false }).addTo(layers.strips);
    const pct = stop ? Math.round((100 * done) / stop) : 0;
    const first = p.waypoints[0];
    L.marker(first, {
      interactive: false, keyboard: false,
      icon: L.divIcon({ className: "strip-label", html: `<span>strip ${p.strip + 1}/${p.strips} · ${pct}% swept</span>`, iconSize: null }),
    }).addTo(layers.strips);
  }
}
MapView.drawStrips = drawStrips;

// --- legend -----------------------------------------------------------------------------------------------------

function renderLegend() {
  const dot = (c, extra = "") => `<span class="lg-dot ${extra}" style="background:${c}"></span>`;
  const item = (html) => `<span class="lg-item">${html}</span>`;
  $("legend").innerHTML = [
    item(`${dot(Cmd.STATE_COLOUR.enroute, "big")} En route`),
    item(`${dot(Cmd.STATE_COLOUR.on_scene, "big")} On scene / searching`),
    item(`${dot(Cmd.STATE_COLOUR.returning, "big")} Returning`),
    item(`${dot(Cmd.STATE_COLOUR.standby)} Ready`),
    item(`${dot(Cmd.STATE_COLOUR.charging)} Charging`),
    item(`${dot(Cmd.STATE_COLOUR.offered)} Offered`),
    item(`${dot(Cmd.STATE_COLOUR.preflight)} Pre-flight`),
    item(`${dot(Cmd.STATE_COLOUR.lost_link)} Link lost`),
    item(`${dot(Cmd.STATE_COLOUR.maintenance)} Maintenance`),
    item(`<span class="lg-cluster">5</span> Drones on the ground (click to zoom)`),
    item(`<span class="lg-pin" style="border-color:${Cmd.GRADE_COLOUR[1]}"><b style="background:${Cmd.GRADE_COLOUR[1]}">1</b></span> Incident, by grade`),
    item(`<span class="lg-line area"></span> Search area`),
    item(`<span class="lg-line flown"></span> Swept`),
    item(`<span class="lg-line todo"></span> To sweep`),
    item(`<span class="lg-line track"></span> Track`),
    item(`<span class="lg-zone"></span> No-fly zone`),
    item(`<span class="lg-station"></span> Station`),
  ].join("");
}

// --- set-up -------------------------------------------------------------------------------------------------------

MapView.init = (ui) => {
  const map = L.map("map", { zoomControl: true, doubleClickZoom: true, minZoom: 3, maxZoom: 19,
    fadeAnimation: false });  // a closed popup goes at once (a fading one still takes clicks)
  MapView.map = map;
  const bm = ui.basemap || (ui.tile_url ? { url: ui.tile_url, attribution: ui.tile_attribution } : null);
  if (bm && bm.url) {
    MapView.basemap = L.tileLayer(bm.url, {
      attribution: bm.attribution || "", minZoom: bm.min_zoom ?? 0, maxZoom: 19,
      maxNativeZoom: bm.max_zoom ?? 19, className: "basemap",
    }).addTo(map);
    document.body.classList.add("has-basemap");
  }
  L.control.scale({ imperial: false }).addTo(map);
  map.createPane("nofly").style.zIndex = 350;
  MapView.nofly = L.geoJSON(ui.nofly, {
    pane: "nofly",
    style: { color: "#ff5c5c", weight: 2, dashArray: "8 4", fillColor: "#ff4d4f", fillOpacity: 0.12 },
  }).bindTooltip((layer) => `No-fly: ${layer.feature.properties.name || ""}`, { sticky: true }).addTo(map);
  MapView.stationLayer = L.layerGroup().addTo(map);
  MapView.areas = L.layerGroup().addTo(map);
  MapView.tracks = L.layerGroup().addTo(map);
  MapView.idle = L.markerClusterGroup({
    maxClusterRadius: 45, disableClusteringAtZoom: 14, showCoverageOnHover: false, spiderfyOnMaxZoom: true,
    iconCreateFunction: (cluster) => {
      const n = cluster.getChildCount();
      const states = cluster.getAllChildMarkers().map((m) => m._droneState);
      const trouble = states.some((s) => s === "lost_link" || s === "maintenance");
      return L.divIcon({
        className: "drone-cluster-icon",
        html: `<span class="drone-cluster${trouble ? " trouble" : ""}" title="${n} drones on the ground">${n}</span>`,
        iconSize: [30, 30], iconAnchor: [15, 15],
      });
    },
  }).addTo(map);
  MapView.flying = L.layerGroup().addTo(map);
  renderLegend();
  map.setView(ui.centre, 11);
  // The map's box changes with the layout (panels filling, the video wall's rows, the window): Leaflet only knows
  // its size from when it was made, so without this, clicks and tiles land where the old box was.
  new ResizeObserver(() => map.invalidateSize({ pan: false })).observe(map.getContainer());
  map.on("click", (e) => Cmd.onMapClick && Cmd.onMapClick(e));
  map.on("dblclick", (e) => Cmd.onMapDblClick && Cmd.onMapDblClick(e));
};

/** The first view: every station and drone, and the no-fly zones, in sight. */
MapView.fit = () => {
  const b = L.latLngBounds([]);
  for (const s of Cmd.stations.values()) b.extend([s.lat, s.lon]);
  for (const d of Cmd.drones.values()) b.extend([d.lat, d.lon]);
  if (MapView.nofly && MapView.nofly.getLayers().length) b.extend(MapView.nofly.getBounds());
  if (b.isValid()) MapView.map.fitBounds(b, { padding: [24, 24], animate: false });
};

Cmd.onReload(async () => {
  MapView.stationLayer.clearLayers();
  for (const s of Cmd.stations.values()) {
    L.circleMarker([s.lat, s.lon], { radius: 4, color: "#c9d4df", weight: 1.5, fillColor: "#0f1720", fillOpacity: 0.9, interactive: true })
      .bindTooltip(`${s.name} (${s.id})`).addTo(MapView.stationLayer);
  }
  for (const d of Cmd.drones.values()) placeDrone(d);
  for (const id of [...MapView.incidentLayers.keys()]) if (!Cmd.incidents.has(id)) drawIncident({ id, status: "closed" });
  for (const i of Cmd.incidents.values()) drawIncident(i);
  if (!MapView.fitted) { MapView.fit(); MapView.fitted = true; }
  await Promise.all([...Cmd.drones.values()].filter((d) => Cmd.AIRBORNE.has(d.state)).map((d) => loadTrack(d.id)));
});

Cmd.on((ev) => {
  const d = ev.data || {};
  if (ev.type === "drone.updated" && d.id) placeDrone(Cmd.drones.get(d.id));
  else if (ev.type === "drone.telemetry" && Cmd.drones.has(d.drone_id)) placeDrone(Cmd.drones.get(d.drone_id));
  else if (ev.type.startsWith("incident.") && d.id) drawIncident(d);
  else if (ev.type.startsWith("mission.") && d.incident_id) {
    drawStrips(d.incident_id);
    const drone = Cmd.drones.get(d.drone_id);
    if (drone) MapView.markers.get(drone.id)?.setTooltipContent(droneLabel(drone));
  }
});

/** Page coordinates of a map position (tests click the map through this). */
window.commandMapPoint = (lat, lon) => {
  const p = MapView.map.latLngToContainerPoint([lat, lon]);
  const r = MapView.map.getContainer().getBoundingClientRect();
  return { x: r.left + p.x, y: r.top + p.y };
};
// For tests and operators: where each drone is drawn, and how.
window.dronefleetMap = () => [...MapView.markers.entries()].map(([id, m]) => ({
  id, state: m._droneState, flying: m._flying, lat: m.getLatLng().lat, lon: m.getLatLng().lng,
  clustered: !m._flying && !MapView.map.hasLayer(m),
  track: MapView.trackLines.get(id)?.points.length || 0,
}));
