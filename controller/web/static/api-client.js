// Shared browser client: REST with the bearer token, and the resumable event stream.
"use strict";

class ApiClient {
  constructor(token) { this.token = token; }

  async call(method, path, body) {
    const res = await fetch(path, {
      method,
      headers: { "Authorization": "Bearer " + this.token, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) {
      const detail = data && data.detail ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : res.statusText;
      const err = new Error(detail); err.status = res.status; throw err;
    }
    return data;
  }

  // A request whose body is not JSON (e.g. an SDP offer for WHEP): resolves to the fetch Response (its headers
  // readable), or throws like call() with the error's detail and status.
  async raw(method, path, body, contentType) {
    const headers = { "Authorization": "Bearer " + this.token };
    if (contentType) headers["Content-Type"] = contentType;
    const res = await fetch(path, { method, headers, body });
    if (!res.ok) {
      const text = await res.text();
      let detail = res.statusText;
      try { const data = JSON.parse(text); if (data && data.detail) detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail); } catch (e) { /* not JSON */ }
      const err = new Error(detail); err.status = res.status; throw err;
    }
    return res;
  }

  // Opens /api/v1/events and reconnects with `since` so no event is lost across drops.
  stream(query, onEvent, onStatus) {
    let lastSeq = null, closed = false, ws = null, retry = 500;
    const open = () => {
      const params = new URLSearchParams(query || {});
      if (lastSeq !== null) params.set("since", String(lastSeq));
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      ws = new WebSocket(`${proto}//${location.host}/api/v1/events?${params}`, ["dronefleet", this.token]);
      ws.onopen = () => { retry = 500; onStatus && onStatus(true); };
      ws.onmessage = (msg) => {
        const ev = JSON.parse(msg.data);
        if (ev.type === "hello") { if (lastSeq === null) lastSeq = ev.last_seq; onEvent(ev); return; }
        if (typeof ev.seq === "number") lastSeq = ev.seq;
        onEvent(ev);
      };
      ws.onclose = (e) => {
        onStatus && onStatus(false, e.code);
        if (closed || e.code === 4401 || e.code === 4403) return;
        // 4410: too far behind to replay; start from now (the page reloads its state on the next hello)
        if (e.code === 4410 || e.code === 4400) lastSeq = null;
        // 4429 (too many streams or replays) and 1013 (fell behind): give the server room before trying again
        if (e.code === 4429 || e.code === 1013) retry = Math.max(retry, 5000);
        setTimeout(open, retry); retry = Math.min(retry * 2, 30000);
      };
    };
    open();
    return { close() { closed = true; if (ws) ws.close(); } };
  }
}

const CATEGORY_LABEL = {
  traffic_accident: "Traffic accident", missing_person: "Missing person", violent_crime: "Violent crime",
  fire: "Fire", other: "Other",
};

function fmtDistance(m) { return m >= 1000 ? (m / 1000).toFixed(1) + " km" : Math.round(m) + " m"; }
function fmtDuration(s) { s = Math.max(0, Math.round(s)); return s >= 60 ? Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s" : s + " s"; }
function escapeHtml(s) { return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }
