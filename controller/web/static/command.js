// Command console, shared state and helpers. The page is split by concern:
//   command.js            state, formatting, the confirmation dialog, event dispatch
//   command-map.js        basemap, legend, drones (idle clustered, flying highlighted), tracks, search areas, no-fly
//   command-incidents.js  incident list (by urgency), detail, opening an incident from the map, actions
//   command-alerts.js     alerts with acknowledgement
//   command-video.js      the video wall (1/4/9 tiles, kept in localStorage, enlarge, thermal palette)
//   command-start.js      sign-in and start-up
// Each file adds its functions to the one `Cmd` object; events are fanned out by `Cmd.onEvent`.
"use strict";

const $ = (id) => document.getElementById(id);

const Cmd = {
  api: null,
  who: null,
  ui: null,
  drones: new Map(),     // id -> drone (DroneOut + live telemetry)
  stations: new Map(),   // id -> station
  incidents: new Map(),  // id -> open incident (IncidentOut)
  missions: new Map(),   // id -> mission (MissionOut), active ones and recently ended
  handlers: [],          // (event) => void, registered by each part
  reloaders: [],         // async () => void, run on every (re)connect
};

Cmd.STATE_COLOUR = {
  standby: "#2ea043", charging: "#7cc46b", offered: "#f5d142", preflight: "#ff9c3a", enroute: "#3fa7ff",
  on_scene: "#e07bff", searching: "#e07bff", returning: "#58c4dc", landed: "#8b9aab", maintenance: "#6e7681",
  lost_link: "#ff4d4f",
};
Cmd.STATE_LABEL = {
  standby: "Ready", charging: "Charging", offered: "Offered", preflight: "Pre-flight", enroute: "En route",
  on_scene: "On scene", searching: "Searching", returning: "Returning", landed: "Landed", maintenance: "Maintenance",
  lost_link: "Link lost",
};
Cmd.AIRBORNE = new Set(["enroute", "on_scene", "searching", "returning"]);
Cmd.GRADE_COLOUR = { 1: "#ff4d4f", 2: "#ff9c3a", 3: "#f5d142", 4: "#7cc46b" };
Cmd.GRADE_LABEL = { 1: "danger to life", 2: "urgent", 3: "soon", 4: "when free" };
Cmd.OPEN = new Set(["queued", "offered", "dispatched", "on_scene"]);
Cmd.ACTIVE_MISSION = new Set(["offered", "accepted", "launched", "on_scene", "returning"]);
Cmd.STATUS_LABEL = { queued: "Queued", offered: "Offered", dispatched: "Dispatched", on_scene: "On scene", resolved: "Resolved", cancelled: "Cancelled" };
Cmd.MISSION_LABEL = {
  offered: "Offered", accepted: "Accepted", declined: "Declined", expired: "Expired", launched: "Flying",
  on_scene: "On scene", returning: "Returning", completed: "Completed", aborted: "Aborted",
};

Cmd.on = (fn) => Cmd.handlers.push(fn);
Cmd.onReload = (fn) => Cmd.reloaders.push(fn);

Cmd.ageText = (iso, now = Date.now()) => {
  if (!iso) return "";
  const s = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}`;
};
Cmd.timeText = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "");

Cmd.missionsOf = (incidentId) => [...Cmd.missions.values()].filter((m) => m.incident_id === incidentId);
Cmd.activeMissionsOf = (incidentId) => Cmd.missionsOf(incidentId).filter((m) => Cmd.ACTIVE_MISSION.has(m.state));
Cmd.incidentOfDrone = (droneId) => {
  const d = Cmd.drones.get(droneId);
  const m = d && d.mission_id ? Cmd.missions.get(d.mission_id) : [...Cmd.missions.values()].find(
    (x) => x.drone_id === droneId && Cmd.ACTIVE_MISSION.has(x.state));
  return m ? (Cmd.incidents.get(m.incident_id) || m.incident || { id: m.incident_id }) : null;
};

/** Seconds until the drone is on scene: the planned flight time less the time flown, for a launched mission. */
Cmd.etaOf = (m, now = Date.now()) => {
  if (m.state === "on_scene") return 0;
  if (m.state === "launched") {
    const since = m._launchedAt || Date.parse(m.updated_at || "") || now;
    return Math.max(0, m.eta_s - (now - since) / 1000);
  }
  return m.eta_s;
};

Cmd.upsertMission = (m, ts) => {
  const known = Cmd.missions.get(m.id);
  const merged = { ...(known || {}), ...m };
  if (m.state === "launched" && (!known || known.state !== "launched")) merged._launchedAt = Date.parse(ts || m.updated_at || "") || Date.now();
  Cmd.missions.set(m.id, merged);
  return merged;
};

// --- the confirmation dialog: a real <dialog>, Esc or "Keep it" cancels, focus starts on the safe choice ---------

Cmd.confirm = ({ title, body, ok = "Confirm", danger = true, reason = null, reasonRequired = false, run }) =>
  new Promise((resolve) => {
    const dlg = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-body").textContent = body;
    $("confirm-ok").textContent = ok;
    $("confirm-ok").className = danger ? "danger" : "primary";
    $("confirm-error").textContent = "";
    $("confirm-reason-wrap").hidden = reason === null;
    $("confirm-reason-label").textContent = reason || "Reason";
    $("confirm-reason").value = "";
    $("confirm-reason").setAttribute("aria-required", String(reasonRequired));
    const form = dlg.querySelector("form");
    const done = (value) => {
      form.onsubmit = null; $("confirm-cancel").onclick = null; dlg.oncancel = null;
      if (dlg.open) dlg.close();
      resolve(value);
    };
    form.onsubmit = async (e) => {
      e.preventDefault();
      const text = $("confirm-reason").value.trim();
      if (reasonRequired && !text) { $("confirm-error").textContent = "Say why (it goes in the timeline)."; $("confirm-reason").focus(); return; }
      if (!run) { done(text || true); return; }
      $("confirm-ok").disabled = true;
      try { await run(text); done(true); } catch (err) { $("confirm-error").textContent = err.message || String(err); } finally { $("confirm-ok").disabled = false; }
    };
    $("confirm-cancel").onclick = () => done(false);
    dlg.oncancel = (e) => { e.preventDefault(); done(false); };
    dlg.showModal();
    (reason !== null ? $("confirm-reason") : $("confirm-cancel")).focus();
  });

Cmd.toast = (text, severity = "warning") => Cmd.addLocalAlert && Cmd.addLocalAlert(severity, text);
Cmd.error = (err) => Cmd.toast(err.message || String(err), "warning");

Cmd.onEvent = (ev) => {
  if (ev.type === "hello") { Cmd.reload().catch(Cmd.error); return; }
  const d = ev.data || {};
  if (ev.type.startsWith("mission.") && d.id && d.incident_id) Cmd.upsertMission(d, ev.ts);
  if (ev.type === "drone.updated" && d.id) Cmd.drones.set(d.id, { ...(Cmd.drones.get(d.id) || {}), ...d });
  if (ev.type === "drone.telemetry" && Cmd.drones.has(d.drone_id)) {
    const known = Cmd.drones.get(d.drone_id);
    Object.assign(known, { lat: d.lat, lon: d.lon, state: d.state ?? known.state });
    if (d.alt_rel_m != null) known.alt_rel_m = d.alt_rel_m;
    if (d.battery_pct != null) known.battery_pct = d.battery_pct;
  }
  if (ev.type.startsWith("incident.") && d.id) {
    if (Cmd.OPEN.has(d.status)) Cmd.incidents.set(d.id, { ...(Cmd.incidents.get(d.id) || {}), ...d });
    else Cmd.incidents.delete(d.id);
  }
  for (const fn of Cmd.handlers) {
    try { fn(ev); } catch (err) { console.error(err); }
  }
  Cmd.renderCounts();
};

Cmd.renderCounts = () => {
  const flying = [...Cmd.drones.values()].filter((d) => Cmd.AIRBORNE.has(d.state)).length;
  $("counts").textContent = `${Cmd.drones.size} drones · ${flying} flying · ${Cmd.incidents.size} open incidents`;
};

Cmd.reload = async () => {
  const api = Cmd.api;
  const [stations, drones, incs, missions] = await Promise.all([
    api.call("GET", "/api/v1/stations"),
    api.call("GET", "/api/v1/drones"),
    api.call("GET", "/api/v1/incidents?status=queued&status=offered&status=dispatched&status=on_scene&limit=1000"),
    api.call("GET", "/api/v1/missions?state=offered&state=accepted&state=launched&state=on_scene&state=returning&limit=1000"),
  ]);
  Cmd.stations.clear();
  for (const s of stations) Cmd.stations.set(s.id, s);
  for (const d of drones) Cmd.drones.set(d.id, { ...(Cmd.drones.get(d.id) || {}), ...d });
  Cmd.incidents.clear();
  for (const i of incs) Cmd.incidents.set(i.id, i);
  for (const m of missions) Cmd.upsertMission(m);
  for (const fn of Cmd.reloaders) await fn().catch(Cmd.error);
  Cmd.renderCounts();
};
