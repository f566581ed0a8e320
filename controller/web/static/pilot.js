// Pilot page: live offers for this station with a countdown, Accept and Decline.
"use strict";

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["accepted", "launched", "on_scene", "returning"]);
const missions = new Map();   // mission id -> latest view
let api = null, stream = null, clockSkewMs = 0, me = null;

function signedIn(token) {
  api = new ApiClient(token);
  return api.call("GET", "/api/v1/me").then((who) => {
    if (who.role !== "pilot") throw new Error("this page is for pilot tokens");
    me = who;
    sessionStorage.setItem("pilotToken", token);
    $("signin").hidden = true; $("board").hidden = false;
    $("station").textContent = "· " + who.station_id;
    stream = api.stream({}, onEvent, (up) => {
      $("link").textContent = up ? "live" : "offline";
      $("link").className = "pill " + (up ? "live" : "down");
    });
  });
}

async function loadMissions() {
  const list = await api.call("GET", "/api/v1/missions?state=offered&state=accepted&state=launched&state=on_scene&state=returning");
  for (const m of list) upsert(m);
  render();
}

function upsert(m) {
  const old = missions.get(m.id);
  if (!old || (m.updated_at || "") >= (old.updated_at || "")) missions.set(m.id, Object.assign({}, old, m));
}

function onEvent(ev) {
  if (ev.type === "hello") { loadMissions().catch(showError); return; }
  if (ev.ts) clockSkewMs = Date.parse(ev.ts) - Date.now();
  if (ev.mission_id && ev.data && ev.data.id === ev.mission_id) { upsert(ev.data); render(); }
}

function remaining(m) { return (Date.parse(m.expires_at) - (Date.now() + clockSkewMs)) / 1000; }

function offerCard(m) {
  const inc = m.incident || {};
  const where = inc.address ? escapeHtml(inc.address) : `${inc.lat?.toFixed(5)}, ${inc.lon?.toFixed(5)}`;
  const secs = remaining(m);
  return `<article class="card grade-${inc.grade}" data-mission="${m.id}">
    <h2>Grade ${inc.grade} · ${escapeHtml(CATEGORY_LABEL[inc.category] || inc.category)}</h2>
    <div class="muted">${where}</div>
    ${inc.description ? `<p>${escapeHtml(inc.description)}</p>` : ""}
    <div class="facts">
      <div><span class="muted">distance</span><b>${fmtDistance(m.distance_m)}</b></div>
      <div><span class="muted">ETA</span><b>${fmtDuration(m.eta_s)}</b></div>
      <div><span class="muted">answer in</span><b class="countdown ${secs < 10 ? "low" : ""}" data-countdown="${m.id}">${Math.max(0, Math.ceil(secs))} s</b></div>
    </div>
    <div class="muted">Drone ${escapeHtml(m.drone_id)} · ${escapeHtml(m.id)} · ${inc.callers} caller(s)</div>
    <p class="actions">
      <button class="accept" data-act="accept" data-id="${m.id}">Accept</button>
      <button class="decline" data-act="decline" data-id="${m.id}">Decline</button>
    </p>
  </article>`;
}

function missionCard(m) {
  const inc = m.incident || {};
  return `<article class="card grade-${inc.grade}" data-mission="${m.id}">
    <div><span class="state" data-state="${m.id}">${escapeHtml(m.state)}</span> · ${escapeHtml(m.id)} · drone ${escapeHtml(m.drone_id)}</div>
    <div class="muted">${escapeHtml(CATEGORY_LABEL[inc.category] || inc.category || "")} · ${fmtDistance(m.distance_m)}</div>
  </article>`;
}

function render() {
  const offers = [...missions.values()].filter((m) => m.state === "offered" && remaining(m) > -1)
    .sort((a, b) => (a.incident?.grade ?? 9) - (b.incident?.grade ?? 9) || a.expires_at.localeCompare(b.expires_at));
  const active = [...missions.values()].filter((m) => ACTIVE.has(m.state));
  $("offers").innerHTML = offers.map(offerCard).join("");
  $("empty").hidden = offers.length > 0;
  $("missions").innerHTML = active.map(missionCard).join("") || '<p class="muted">None in progress.</p>';
}

function tick() {
  for (const el of document.querySelectorAll("[data-countdown]")) {
    const m = missions.get(el.dataset.countdown);
    if (!m) continue;
    const secs = remaining(m);
    el.textContent = Math.max(0, Math.ceil(secs)) + " s";
    el.classList.toggle("low", secs < 10);
  }
}

async function act(action, id, button) {
  button.disabled = true;
  try {
    const m = await api.call("POST", `/api/v1/missions/${encodeURIComponent(id)}/${action}`, action === "decline" ? { reason: "declined on the pilot page" } : undefined);
    upsert(m); render();
  } catch (err) { showError(err); button.disabled = false; }
}

function showError(err) { alert(err.message || String(err)); }

document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-act]");
  if (b) act(b.dataset.act, b.dataset.id, b);
});
$("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  signedIn($("token").value.trim()).catch((err) => { $("signin-error").textContent = err.message; });
});
$("signout").addEventListener("click", () => { sessionStorage.removeItem("pilotToken"); location.reload(); });
setInterval(tick, 250);

const saved = sessionStorage.getItem("pilotToken");
if (saved) signedIn(saved).catch(() => { $("signin").hidden = false; }); else $("signin").hidden = false;
