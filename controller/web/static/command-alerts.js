// Command console, alerts: open alerts loaded on start (GET /alerts?open=true), new ones from the event stream,
// newest first, styled by severity and named by kind; Acknowledge records who and when (POST /alerts/{id}/ack),
// and every console sees it (alert.acknowledged).
"use strict";

const Alerts = { items: new Map(), local: 0 };
Cmd.alerts = Alerts;

const KIND_LABEL = {
  offer_expiring: "Offer expiring", offer_declined: "Offer declined", offer_expired: "Offer expired",
  queued_no_drone: "No drone", link_lost: "Link lost", battery_low: "Battery low", failsafe: "Failsafe",
  hotspot_new: "New hotspot", contradiction: "State contradiction", mission_failed: "Mission failed",
  recovery_needed: "Recovery needed",
};
const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };

function alertFrom(data, ts) {
  return {
    id: data.id != null ? String(data.id) : null, kind: data.kind || "", severity: data.severity || "info",
    text: data.text || "", at: data.at || ts || new Date().toISOString(), drone_id: data.drone_id, mission_id: data.mission_id,
    incident_id: data.incident_id, station_id: data.station_id, acknowledged: data.acknowledged || null,
  };
}

Alerts.add = (a) => {
  const key = a.id ?? `local-${++Alerts.local}`;
  Alerts.items.set(key, { ...(Alerts.items.get(key) || {}), ...a, key });
  while (Alerts.items.size > 200) Alerts.items.delete(Alerts.items.keys().next().value);
  Alerts.render();
};

Cmd.addLocalAlert = (severity, text) => Alerts.add({ id: null, kind: "console", severity, text, at: new Date().toISOString(), acknowledged: null });

Alerts.render = () => {
  const showAcked = $("alerts-show-acked").checked;
  const all = [...Alerts.items.values()].sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
  const shown = all.filter((a) => showAcked || !a.acknowledged);
  const open = all.filter((a) => a.id && !a.acknowledged).length;
  $("alert-count").textContent = open ? String(open) : "";
  const focused = document.activeElement?.closest?.("#alerts li")?.dataset.alert;
  $("alerts").innerHTML = shown.map((a) => {
    const ack = a.acknowledged;
    const subject = [a.incident_id, a.drone_id].filter(Boolean).map((s) => `<span class="subject">${escapeHtml(s)}</span>`).join(" ");
    return `<li class="alert sev-${escapeHtml(a.severity)} kind-${escapeHtml(a.kind || "other")}${ack ? " acked" : ""}" data-alert="${escapeHtml(a.key)}" data-kind="${escapeHtml(a.kind)}">
      <div class="alert-top"><span class="sev-badge">${escapeHtml(a.severity)}</span>
        <b class="kind">${escapeHtml(KIND_LABEL[a.kind] || (a.kind === "console" ? "Console" : a.kind || "Alert"))}</b>
        <span class="muted when">${Cmd.timeText(a.at)}</span></div>
      <div class="alert-text">${escapeHtml(a.text)} ${subject}</div>
      ${ack ? `<div class="ack-by">Acknowledged by ${escapeHtml(ack.by?.name || ack.by || "?")}${ack.by?.role ? ` (${escapeHtml(ack.by.role)})` : ""} at ${Cmd.timeText(ack.at)}</div>`
        : a.id ? `<button type="button" class="small ack" data-ack="${escapeHtml(a.id)}">Acknowledge</button>`
        : `<button type="button" class="small ack" data-dismiss="${escapeHtml(a.key)}">Dismiss</button>`}
    </li>`;
  }).join("") || '<li class="muted none">No open alerts.</li>';
  if (focused) $("alerts").querySelector(`li[data-alert="${CSS.escape(focused)}"] button`)?.focus();
};

$("alerts").addEventListener("click", async (e) => {
  const b = e.target.closest("button");
  if (!b) return;
  if (b.dataset.dismiss) { Alerts.items.delete(b.dataset.dismiss); Alerts.render(); return; }
  if (!b.dataset.ack) return;
  b.disabled = true;
  try {
    const out = await Cmd.api.call("POST", `/api/v1/alerts/${encodeURIComponent(b.dataset.ack)}/ack`);
    Alerts.add(alertFrom(out));
  } catch (err) {
    if (err.status === 409) Alerts.loadOpen().catch(() => {});  // someone else was quicker: show who
    Cmd.error(err);
    b.disabled = false;
  }
});
$("alerts-show-acked").addEventListener("change", () => Alerts.render());

Alerts.loadOpen = async () => {
  try {
    const open = await Cmd.api.call("GET", "/api/v1/alerts?open=true&limit=200");
    for (const a of open) Alerts.add(alertFrom(a));
  } catch (err) {
    if (err.status !== 404) throw err;  // a controller without the alerts route: the stream still brings new ones
  }
  Alerts.render();
};

Cmd.onReload(Alerts.loadOpen);
Cmd.on((ev) => {
  const d = ev.data || {};
  if (ev.type === "alert") Alerts.add(alertFrom({ ...d, incident_id: d.incident_id ?? ev.incident_id, drone_id: d.drone_id ?? ev.drone_id }, ev.ts));
  else if (ev.type === "alert.acknowledged" && d.id != null) {
    const known = Alerts.items.get(String(d.id));
    if (known) Alerts.add({ ...known, acknowledged: { by: d.by, at: d.at } });
    else if (d.alert) Alerts.add(alertFrom(d.alert));
  }
});
