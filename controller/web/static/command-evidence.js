// Command console, evidence: the recordings of the selected incident (in its detail view, kept up to date by the
// recording.* events), played back in a large dialog with evidence.js (the map follows the recorded position),
// exported as a signed package by commanders and admins (asked first: the export is logged), and an "Evidence…"
// search in the header (by incident or drone) that also reaches the recordings of closed incidents.
// Needs command.js (Cmd), api-client.js and evidence.js (openEvidencePlayer).
"use strict";

const Ev = {
  incident: null,    // the incident whose recordings the section shows
  rows: [],          // its recordings (RecordingOut), newest first
  loaded: false,
  error: "",
  section: null,     // the section node, moved into each new rendering of the incident detail
  timer: null,
  player: null,      // the open player (openEvidencePlayer's handle)
  playing: null,     // the recording it plays
  searchRows: [],
};
Cmd.ev = Ev;

Ev.canExport = () => !!Cmd.who && ["commander", "admin"].includes(Cmd.who.role);
Ev.canView = () => !!Cmd.who && ["commander", "admin", "pilot"].includes(Cmd.who.role);

Ev.STATUS_LABEL = { recording: "Recording", complete: "Complete", interrupted: "Interrupted", error: "Write error", deleted: "Deleted" };

function evDuration(r, now = Date.now()) {
  const start = Date.parse(r.started_at);
  const end = r.ended_at ? Date.parse(r.ended_at) : now;
  return Number.isFinite(start) && Number.isFinite(end) ? fmtDuration((end - start) / 1000) : "";
}

function evClock(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";
}

function evDay(iso) {
  return iso ? new Date(iso).toLocaleDateString([], { day: "2-digit", month: "short" }) : "";
}

/** The recordings as a table; `withIncident` adds the incident column (the search). */
Ev.table = (rows, { withIncident = false, caption = "" } = {}) => {
  const now = Date.now();
  const exp = Ev.canExport();
  return `<table class="recordings">${caption ? `<caption class="sr-only">${escapeHtml(caption)}</caption>` : ""}
    <thead><tr>${withIncident ? "<th scope=\"col\">Incident</th>" : ""}<th scope="col">Drone</th><th scope="col">Camera</th>
      <th scope="col">Time</th><th scope="col">Length</th><th scope="col">Seg.</th><th scope="col">Status</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
    <tbody>${rows.map((r) => {
      const gone = r.status === "deleted" || !!r.deleted_at;
      const label = `${r.drone_id} ${r.kind} ${evClock(r.started_at)}`;
      return `<tr data-recording="${escapeHtml(r.id)}" data-status="${escapeHtml(r.status)}">
        ${withIncident ? `<td>${escapeHtml(r.incident_id || "–")}</td>` : ""}
        <td>${escapeHtml(r.drone_id)}</td>
        <td>${escapeHtml(r.kind)}<br><span class="muted">${escapeHtml(r.codec || "")}</span></td>
        <td title="${escapeHtml(r.started_at)} → ${escapeHtml(r.ended_at || "still recording")}"><span class="rec-day">${escapeHtml(evDay(r.started_at))}</span>
          ${escapeHtml(evClock(r.started_at))}–${r.ended_at ? escapeHtml(evClock(r.ended_at)) : "now"}</td>
        <td data-field="length">${escapeHtml(evDuration(r, now))}</td>
        <td data-field="segments">${r.segments}</td>
        <td><span class="rec-status rs-${escapeHtml(r.status)}">${escapeHtml(Ev.STATUS_LABEL[r.status] || r.status)}</span>${r.write_errors ? `<br><span class="row-warn">${r.write_errors} write error(s)</span>` : ""}${r.dropped ? `<br><span class="row-warn">${r.dropped} frame(s) dropped</span>` : ""}</td>
        <td class="rec-actions">${gone ? "" : `<button type="button" class="small primary" data-ev="play" data-rec="${escapeHtml(r.id)}" aria-label="Play ${escapeHtml(label)}">Play</button>
          ${exp ? `<button type="button" class="small" data-ev="export" data-rec="${escapeHtml(r.id)}" aria-label="Export evidence of ${escapeHtml(label)}">Export evidence…</button>` : ""}`}</td>
      </tr>`;
    }).join("")}</tbody></table>`;
};

/** The recordings as a compact list, for the narrow incident detail. */
Ev.list = (rows) => {
  const now = Date.now();
  const exp = Ev.canExport();
  return `<ul class="rec-list">${rows.map((r) => {
    const gone = r.status === "deleted" || !!r.deleted_at;
    const label = `${r.drone_id} ${r.kind} ${evClock(r.started_at)}`;
    return `<li data-recording="${escapeHtml(r.id)}" data-status="${escapeHtml(r.status)}">
      <div class="rec-line"><b>${escapeHtml(r.drone_id)}</b> <span>${escapeHtml(r.kind)} <span class="muted">${escapeHtml(r.codec || "")}</span></span>
        <span class="rec-status rs-${escapeHtml(r.status)}">${escapeHtml(Ev.STATUS_LABEL[r.status] || r.status)}</span></div>
      <div class="rec-line rec-facts" title="${escapeHtml(r.started_at)} → ${escapeHtml(r.ended_at || "still recording")}">
        <span>${escapeHtml(evClock(r.started_at))}–${r.ended_at ? escapeHtml(evClock(r.ended_at)) : "now"}</span>
        <span data-field="length">${escapeHtml(evDuration(r, now))}</span>
        <span><span data-field="segments">${r.segments}</span> segment${r.segments === 1 ? "" : "s"}</span>
        ${r.write_errors ? `<span class="row-warn">${r.write_errors} write error(s)</span>` : ""}${r.dropped ? `<span class="row-warn">${r.dropped} frame(s) dropped</span>` : ""}</div>
      ${gone ? "" : `<div class="rec-actions"><button type="button" class="small primary" data-ev="play" data-rec="${escapeHtml(r.id)}" aria-label="Play ${escapeHtml(label)}">Play</button>
        ${exp ? `<button type="button" class="small" data-ev="export" data-rec="${escapeHtml(r.id)}" aria-label="Export evidence of ${escapeHtml(label)}">Export evidence…</button>` : ""}</div>`}
    </li>`;
  }).join("")}</ul>`;
};

// --- the section in the incident detail ---------------------------------------------------------------------------

/** Called by the incident detail before it replaces its content: remember what had the keyboard focus. */
Ev.beforeDetail = () => {
  Ev.wasShown = !!Ev.section && document.contains(Ev.section) && !Ev.section.closest("[hidden]");
  Ev.pendingFocus = Ev.wasShown && Ev.section.contains(document.activeElement) ? document.activeElement : null;
};

/** Called by the incident detail after each rendering: put the recordings section into `slot`. */
Ev.attachTo = (slot, incidentId) => {
  if (!Ev.canView()) { slot.remove(); return; }
  if (!Ev.section) {
    Ev.section = document.createElement("section");
    Ev.section.className = "recordings-section";
    Ev.section.setAttribute("aria-labelledby", "recordings-h");
  }
  const focused = Ev.pendingFocus;
  Ev.pendingFocus = null;
  slot.replaceWith(Ev.section);
  if (Ev.incident !== incidentId) {
    Ev.incident = incidentId; Ev.rows = []; Ev.loaded = false; Ev.error = "";
    Ev.renderSection();
    Ev.load();
  } else {
    Ev.renderSection();
    if (!Ev.wasShown) Ev.load();  // the detail was closed and is open again: the list may be stale
  }
  if (focused && Ev.section.contains(focused)) focused.focus({ preventScroll: true });
};

Ev.renderSection = () => {
  const s = Ev.section;
  if (!s) return;
  const focusKey = s.contains(document.activeElement) ? [document.activeElement.dataset.ev, document.activeElement.dataset.rec] : null;
  const live = Ev.rows.filter((r) => r.status === "recording").length;
  s.innerHTML = `<h4 id="recordings-h">Recordings ${Ev.rows.length ? `<span class="count">${Ev.rows.length}</span>` : ""}
      ${live ? `<span class="rec-live">● ${live} recording now</span>` : ""}</h4>
    ${Ev.error ? `<p class="row-warn">${escapeHtml(Ev.error)}</p>`
      : !Ev.loaded ? `<p class="muted">Loading recordings…</p>`
      : Ev.rows.length ? Ev.list(Ev.rows)
      : `<p class="muted">No recording yet: drones record their cameras from take-off to landing.</p>`}`;
  if (focusKey) s.querySelector(`button[data-ev="${focusKey[0]}"][data-rec="${CSS.escape(focusKey[1] || "")}"]`)?.focus({ preventScroll: true });
};

Ev.load = async () => {
  const id = Ev.incident;
  if (!id || !Ev.canView()) return;
  try {
    const rows = await Cmd.api.call("GET", `/api/v1/evidence/recordings?incident_id=${encodeURIComponent(id)}&limit=200`);
    if (Ev.incident !== id) return;
    Ev.rows = rows; Ev.loaded = true; Ev.error = "";
  } catch (err) {
    if (Ev.incident !== id) return;
    Ev.loaded = true;
    Ev.error = err.status === 503 ? "Recording is not running in this controller." : `Recordings could not be listed: ${err.message}`;
  }
  Ev.renderSection();
};

Ev.scheduleLoad = () => {
  clearTimeout(Ev.timer);
  Ev.timer = setTimeout(() => Ev.load(), 300);
};

// --- playing -------------------------------------------------------------------------------------------------------

function evDialog(id, title, extraClass) {
  const dlg = document.createElement("dialog");
  dlg.id = id;
  dlg.className = `ev-dialog ${extraClass || ""}`;
  dlg.setAttribute("aria-labelledby", `${id}-title`);
  dlg.innerHTML = `<div class="ev-dialog-head"><h2 id="${id}-title">${escapeHtml(title)}</h2>
    <span class="ev-dialog-tools"></span>
    <button type="button" class="small ev-close" aria-label="Close">Close ✕</button></div><div class="ev-dialog-body"></div>`;
  document.body.appendChild(dlg);
  dlg.querySelector(".ev-close").addEventListener("click", () => dlg.close());
  return dlg;
}

Ev.playerDialog = evDialog("evidence-player", "Evidence playback", "ev-player");
Ev.playerDialog.addEventListener("close", () => {
  if (Ev.player) { try { Ev.player.close(); } catch (e) { /* already gone */ } }
  Ev.player = null; Ev.playing = null;
  Ev.playerDialog.querySelector(".ev-dialog-body").innerHTML = "";
  Ev.refocus(Ev.returnFocus, "play", Ev.returnRec);
  Ev.returnFocus = null;
});

/** Focus `el`, or (the list was redrawn meanwhile) the same button of the same recording where it is shown now. */
Ev.refocus = (el, action, recordingId) => {
  if (el && document.contains(el) && !el.closest("[hidden]")) { el.focus(); return; }
  const scope = Ev.searchDialog.open ? Ev.searchDialog : Ev.section;
  scope?.querySelector(`button[data-ev="${action}"][data-rec="${CSS.escape(recordingId || "")}"]`)?.focus();
};

Ev.play = async (recordingId, opener) => {
  const dlg = Ev.playerDialog;
  if (dlg.open) dlg.close();
  Ev.returnFocus = opener || document.activeElement;
  Ev.returnRec = recordingId;
  const body = dlg.querySelector(".ev-dialog-body");
  const tools = dlg.querySelector(".ev-dialog-tools");
  body.innerHTML = `<p class="muted ev-loading" role="status">Loading ${escapeHtml(recordingId)}…</p>`;
  tools.innerHTML = Ev.canExport()
    ? `<button type="button" class="small" data-ev="export" data-rec="${escapeHtml(recordingId)}">Export evidence…</button>` : "";
  dlg.querySelector("h2").textContent = `Evidence playback · ${recordingId}`;
  dlg.showModal();
  dlg.querySelector(".ev-close").focus();
  Ev.playing = recordingId;
  try {
    const player = await openEvidencePlayer(body, recordingId, Cmd.api);
    if (!dlg.open || Ev.playing !== recordingId) { player.close(); return; }
    body.querySelector(".ev-loading")?.remove();
    Ev.player = player;
    window.evidencePlayer = player;  // for tests and the curious: position(), seek(t), video, map
    player.map.invalidateSize();
  } catch (err) {
    body.innerHTML = `<p class="error" role="alert">Could not open ${escapeHtml(recordingId)}: ${escapeHtml(err.message || String(err))}</p>`;
  }
};

// --- exporting -----------------------------------------------------------------------------------------------------

Ev.export = (recordingId, opener) => {
  Cmd.confirm({
    title: `Export evidence ${recordingId}?`,
    body: "A signed package (video segments, telemetry, mission and incident timeline, manifest, signature and public key) " +
      "is downloaded to this computer. The export is logged in the evidence audit with your name and the time. " +
      "`dronefleet evidence verify FILE` checks the package offline.",
    ok: "Export and download", danger: false, reason: "Reason (logged, optional)",
    run: async (reason) => {
      const res = await Cmd.api.raw("POST", `/api/v1/evidence/recordings/${encodeURIComponent(recordingId)}/export`,
        JSON.stringify({ reason }), "application/json");
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url; a.download = `evidence-${recordingId}.zip`;
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      Cmd.toast(`Evidence ${recordingId} exported (${(blob.size / 1e6).toFixed(1)} MB); the export is logged.`, "info");
    },
  }).then(() => Ev.refocus(opener, "export", recordingId));
};

// --- the search (header): recent recordings, by incident or drone, closed incidents included ------------------------

Ev.searchDialog = evDialog("evidence-search", "Evidence", "ev-search");
Ev.searchDialog.querySelector(".ev-dialog-body").innerHTML = `
  <form class="ev-search-form" novalidate>
    <label for="ev-q-incident">Incident</label>
    <input id="ev-q-incident" type="text" maxlength="64" autocomplete="off" placeholder="e.g. INC-…">
    <label for="ev-q-drone">Drone</label>
    <input id="ev-q-drone" type="text" maxlength="64" autocomplete="off" placeholder="e.g. ST-01-D1" list="ev-drones">
    <datalist id="ev-drones"></datalist>
    <button type="submit" class="small primary">Search</button>
    <button type="button" class="small" data-ev="recent">Recent</button>
  </form>
  <p class="muted ev-search-note" role="status"></p>
  <div class="ev-results"></div>`;

Ev.search = async (query = {}) => {
  const dlg = Ev.searchDialog;
  const note = dlg.querySelector(".ev-search-note");
  const params = new URLSearchParams({ limit: "50" });
  if (query.incident) params.set("incident_id", query.incident);
  if (query.drone) params.set("drone_id", query.drone);
  note.textContent = "Searching…";
  const seq = (Ev.searchSeq = (Ev.searchSeq || 0) + 1);
  try {
    const rows = await Cmd.api.call("GET", `/api/v1/evidence/recordings?${params}`);
    if (seq !== Ev.searchSeq) return;  // a newer search was started meanwhile
    Ev.searchRows = rows;
    const what = [query.incident && `incident ${query.incident}`, query.drone && `drone ${query.drone}`].filter(Boolean).join(", ");
    note.textContent = `${Ev.searchRows.length} recording${Ev.searchRows.length === 1 ? "" : "s"}${what ? ` of ${what}` : ", newest first"}`;
    dlg.querySelector(".ev-results").innerHTML = Ev.searchRows.length ? Ev.table(Ev.searchRows, { withIncident: true, caption: "Recordings found" }) : "";
  } catch (err) {
    if (seq === Ev.searchSeq) note.textContent = `Search failed: ${err.message}`;
  }
};

Ev.openSearch = (query = {}) => {
  const dlg = Ev.searchDialog;
  $("ev-q-incident").value = query.incident || "";
  $("ev-q-drone").value = query.drone || "";
  const someDrone = [...Cmd.drones.keys()].sort()[0];
  if (someDrone) $("ev-q-drone").placeholder = `e.g. ${someDrone}`;
  $("ev-drones").innerHTML = [...Cmd.drones.keys()].sort().map((d) => `<option value="${escapeHtml(d)}"></option>`).join("");
  dlg.showModal();
  $("ev-q-incident").focus();
  Ev.search(query);
};

Ev.searchDialog.querySelector("form").addEventListener("submit", (e) => {
  e.preventDefault();
  Ev.search({ incident: $("ev-q-incident").value.trim(), drone: $("ev-q-drone").value.trim() });
});

Ev.headerButton = document.createElement("button");
Ev.headerButton.type = "button";
Ev.headerButton.id = "evidence-btn";
Ev.headerButton.className = "small";
Ev.headerButton.textContent = "Evidence…";
Ev.headerButton.title = "Recordings of any incident or drone, closed ones included";
Ev.headerButton.hidden = true;
Ev.headerButton.addEventListener("click", () => Ev.openSearch());
document.querySelector("header .header-right")?.prepend(Ev.headerButton);

// One click handler for Play / Export wherever the tables are (detail, search, player).
document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-ev]");
  if (!b) return;
  if (b.dataset.ev === "play") Ev.play(b.dataset.rec, b);
  else if (b.dataset.ev === "export") Ev.export(b.dataset.rec, b);
  else if (b.dataset.ev === "recent") { $("ev-q-incident").value = ""; $("ev-q-drone").value = ""; Ev.search({}); }
});

// --- live ----------------------------------------------------------------------------------------------------------

Cmd.onReload(async () => {
  Ev.headerButton.hidden = !Ev.canView();
  if (Ev.incident && Ev.section && document.contains(Ev.section)) Ev.load();
});
Cmd.on((ev) => {
  if (!ev.type.startsWith("recording.")) return;
  const d = ev.data || {};
  const inc = ev.incident_id || d.incident_id;
  if (Ev.incident && inc === Ev.incident) {
    // the event carries the recording as listed: show it at once, then confirm with the list
    if (d.id) {
      const k = Ev.rows.findIndex((r) => r.id === d.id);
      const row = Object.fromEntries(Object.entries(d).filter(([key]) => !["gaps", "lost", "reason", "policy"].includes(key)));
      if (k >= 0) Ev.rows[k] = { ...Ev.rows[k], ...row }; else Ev.rows.unshift(row);
      Ev.loaded = true;
      Ev.renderSection();
    }
    Ev.scheduleLoad();
  }
  if (Ev.searchDialog.open && Ev.searchRows.some((r) => r.id === d.id)) {
    Ev.search({ incident: $("ev-q-incident").value.trim(), drone: $("ev-q-drone").value.trim() });
  }
});
setInterval(() => {  // the length of recordings still going on ticks
  if (!Ev.section || !document.contains(Ev.section)) return;
  for (const r of Ev.rows) {
    if (r.ended_at) continue;
    const cell = Ev.section.querySelector(`[data-recording="${CSS.escape(r.id)}"] [data-field=length]`);
    if (cell) cell.textContent = evDuration(r);
  }
}, 1000);
