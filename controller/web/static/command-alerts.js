// Command console, alerts: open alerts loaded on start (GET /alerts?open=true), new ones from the event stream,
// newest first, styled by severity and named by kind; Acknowledge records who and when (POST /alerts/{id}/ack),
// and every console sees it (alert.acknowledged). More than 3 open alerts of one kind close together are one group
// card (count, first subjects, show all, Acknowledge all behind the confirm dialog, with progress).
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

// Many alerts of one kind close together (137 links lost at start-up) are one group card: the count, severity,
// newest time, the first few subjects, "show all" to expand, and "Acknowledge all N…" behind the confirm dialog.
const GROUP_MIN = 4;            // more than 3 open alerts of one kind ...
const GROUP_GAP_MS = 10 * 60e3; // ... each within 10 minutes of the previous one
const GROUP_PREVIEW = 5;
const ACK_PARALLEL = 4;
Alerts.expanded = new Set();    // group keys shown in full
Alerts.bulk = new Map();        // group key -> { total, done, already, failed } while "Acknowledge all" runs

const kindLabel = (a) => KIND_LABEL[a.kind] || (a.kind === "console" ? "Console" : a.kind || "Alert");
const subjectOf = (a) => a.drone_id || a.incident_id || a.mission_id || a.station_id || "";

function alertHtml(a) {
  const ack = a.acknowledged;
  const subject = [a.incident_id, a.drone_id].filter(Boolean).map((s) => `<span class="subject">${escapeHtml(s)}</span>`).join(" ");
  return `<li class="alert sev-${escapeHtml(a.severity)} kind-${escapeHtml(a.kind || "other")}${ack ? " acked" : ""}" data-alert="${escapeHtml(a.key)}" data-kind="${escapeHtml(a.kind)}">
      <div class="alert-top"><span class="sev-badge">${escapeHtml(a.severity)}</span>
        <b class="kind">${escapeHtml(kindLabel(a))}</b>
        <span class="muted when">${Cmd.timeText(a.at)}</span></div>
      <div class="alert-text">${escapeHtml(a.text)} ${subject}</div>
      ${ack ? `<div class="ack-by">Acknowledged by ${escapeHtml(ack.by?.name || ack.by || "?")}${ack.by?.role ? ` (${escapeHtml(ack.by.role)})` : ""} at ${Cmd.timeText(ack.at)}</div>`
        : a.id ? `<button type="button" class="small ack" data-ack="${escapeHtml(a.id)}" data-fk="ack:${escapeHtml(a.key)}">Acknowledge</button>`
        : `<button type="button" class="small ack" data-dismiss="${escapeHtml(a.key)}" data-fk="dismiss:${escapeHtml(a.key)}">Dismiss</button>`}
    </li>`;
}

function groupNoun(members) {
  if (members.every((a) => a.drone_id)) return "drones";
  if (members.every((a) => a.incident_id)) return "incidents";
  return "alerts";
}

function groupHtml(g) {
  const { key, members } = g;
  const n = members.length, first = members[0];
  const noun = groupNoun(members);
  const expanded = Alerts.expanded.has(key);
  const bulk = Alerts.bulk.get(key);
  const preview = members.slice(0, GROUP_PREVIEW).map(subjectOf).filter(Boolean);
  const more = n - preview.length;
  const listId = `alert-group-${key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  return `<li class="alert alert-group sev-${escapeHtml(g.severity)} kind-${escapeHtml(first.kind || "other")}" data-group="${escapeHtml(key)}" data-kind="${escapeHtml(first.kind)}" data-count="${n}">
      <div class="alert-top"><span class="sev-badge">${escapeHtml(g.severity)}</span>
        <b class="kind">${escapeHtml(kindLabel(first))} · <span class="group-count">${n}</span> ${noun}</b>
        <span class="muted when">${Cmd.timeText(first.at)}</span></div>
      <div class="alert-text">${preview.map((s) => `<span class="subject">${escapeHtml(s)}</span>`).join(" ")}${more > 0 ? ` <span class="muted-strong">and ${more} more</span>` : ""}</div>
      <div class="group-actions">
        <button type="button" class="small expand" aria-expanded="${expanded}" aria-controls="${listId}" data-expand="${escapeHtml(key)}" data-fk="expand:${escapeHtml(key)}">${expanded ? "show fewer" : `show all ${n}`}</button>
        <button type="button" class="small ack ack-all" data-ack-group="${escapeHtml(key)}" data-fk="ackall:${escapeHtml(key)}"${bulk ? " disabled" : ""}>Acknowledge all ${n}…</button>
      </div>
      <div class="group-progress" role="status">${bulk ? `acknowledged ${bulk.done} of ${bulk.total}` : ""}</div>
      <ul class="group-members" id="${listId}"${expanded ? "" : " hidden"}>${expanded ? members.map(alertHtml).join("") : ""}</ul>
    </li>`;
}

// Entries to show: open alerts grouped by kind and time, the rest single; most severe, then newest, first.
Alerts.entries = () => {
  const showAcked = $("alerts-show-acked").checked;
  const all = [...Alerts.items.values()].sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
  const byKind = new Map();
  const entries = [];
  for (const a of all) {
    if (a.id && !a.acknowledged) {
      if (!byKind.has(a.kind)) byKind.set(a.kind, []);
      byKind.get(a.kind).push(a);
    } else if (showAcked || !a.acknowledged) entries.push({ single: a, at: Date.parse(a.at), rank: a.acknowledged ? 9 : SEVERITY_RANK[a.severity] ?? 3 });
  }
  for (const [kind, list] of byKind) {  // list is newest first: cut where the gap between two is too long
    let cluster = [], n = 0;
    const flush = () => {
      if (!cluster.length) return;
      if (cluster.length >= GROUP_MIN) {
        const rank = Math.min(...cluster.map((a) => SEVERITY_RANK[a.severity] ?? 3));
        const severity = Object.keys(SEVERITY_RANK).find((s) => SEVERITY_RANK[s] === rank) || cluster[0].severity;
        entries.push({ group: { key: `${kind}#${n++}`, members: cluster, severity }, at: Date.parse(cluster[0].at), rank });
      } else for (const a of cluster) entries.push({ single: a, at: Date.parse(a.at), rank: SEVERITY_RANK[a.severity] ?? 3 });
      cluster = [];
    };
    for (const a of list) {
      if (cluster.length && Date.parse(cluster[cluster.length - 1].at) - Date.parse(a.at) > GROUP_GAP_MS) flush();
      cluster.push(a);
    }
    flush();
  }
  return entries.sort((x, y) => x.rank - y.rank || y.at - x.at);
};

Alerts.render = () => {
  const entries = Alerts.entries();
  Alerts.groups = new Map(entries.filter((e) => e.group).map((e) => [e.group.key, e.group]));
  const open = [...Alerts.items.values()].filter((a) => a.id && !a.acknowledged).length;
  $("alert-count").textContent = open ? String(open) : "";
  const focused = document.activeElement?.closest?.("#alerts") ? document.activeElement.dataset.fk : null;
  $("alerts").innerHTML = entries.map((e) => (e.group ? groupHtml(e.group) : alertHtml(e.single))).join("")
    || '<li class="muted none">No open alerts.</li>';
  if (focused) $("alerts").querySelector(`button[data-fk="${CSS.escape(focused)}"]`)?.focus();
};

async function ackOne(id) {
  const out = await Cmd.api.call("POST", `/api/v1/alerts/${encodeURIComponent(id)}/ack`);
  Alerts.add(alertFrom(out));
}

// Acknowledge every alert of a group, a few at a time; 409 (someone else was quicker) counts as done.
Alerts.ackGroup = async (key) => {
  const g = Alerts.groups?.get(key);
  if (!g || Alerts.bulk.has(key)) return;
  const ids = g.members.map((a) => a.id);
  const label = kindLabel(g.members[0]);
  const noun = groupNoun(g.members);
  const ok = await Cmd.confirm({
    title: `Acknowledge all ${ids.length} "${label}" alerts?`,
    body: `Each of the ${ids.length} ${noun} (${g.members.slice(0, GROUP_PREVIEW).map(subjectOf).filter(Boolean).join(", ")}${ids.length > GROUP_PREVIEW ? ", …" : ""}) is acknowledged in your name; every console sees it.`,
    ok: `Acknowledge all ${ids.length}`, danger: false,
  });
  if (!ok) return;
  const bulk = { total: ids.length, done: 0, already: 0, failed: 0 };
  Alerts.bulk.set(key, bulk);
  Alerts.render();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      try { await ackOne(id); } catch (err) {
        if (err.status === 409) bulk.already++; else bulk.failed++;
      }
      bulk.done++;
      const status = $("alerts").querySelector(`li[data-group="${CSS.escape(key)}"] .group-progress`);
      if (status) status.textContent = `acknowledged ${bulk.done} of ${bulk.total}`;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(ACK_PARALLEL, ids.length) }, worker));
  } finally {
    Alerts.bulk.delete(key);
    if (bulk.already) Alerts.loadOpen().catch(() => {});
    Cmd.addLocalAlert(bulk.failed ? "warning" : "info",
      `Acknowledged ${bulk.done - bulk.failed} of ${bulk.total} "${label}" alerts` +
      (bulk.already ? ` (${bulk.already} already by someone else)` : "") + (bulk.failed ? `; ${bulk.failed} failed` : "") + ".");
  }
};

$("alerts").addEventListener("click", async (e) => {
  const b = e.target.closest("button");
  if (!b) return;
  if (b.dataset.dismiss) { Alerts.items.delete(b.dataset.dismiss); Alerts.render(); return; }
  if (b.dataset.expand) {
    const k = b.dataset.expand;
    if (Alerts.expanded.has(k)) Alerts.expanded.delete(k); else Alerts.expanded.add(k);
    Alerts.render();
    return;
  }
  if (b.dataset.ackGroup) { Alerts.ackGroup(b.dataset.ackGroup).catch(Cmd.error); return; }
  if (!b.dataset.ack) return;
  b.disabled = true;
  try {
    await ackOne(b.dataset.ack);
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
