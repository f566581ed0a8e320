// Command console, start-up: sign in (the token is kept for the tab), draw the map, open the event stream.
"use strict";

async function startConsole(token) {
  const api = new ApiClient(token);
  const who = await api.call("GET", "/api/v1/me");
  const ui = await api.call("GET", "/api/v1/ui-config");
  Cmd.api = api; Cmd.who = who; Cmd.ui = ui;
  sessionStorage.setItem("commandToken", token);
  $("signin").hidden = true; $("layout").hidden = false;
  $("who").textContent = `· ${who.name} (${who.role})`;
  Cmd.mapView.init(ui);
  Cmd.wall.init();
  Cmd.alerts.render();
  api.stream({}, Cmd.onEvent, (up) => { $("link").textContent = up ? "live" : "offline"; $("link").className = "pill " + (up ? "live" : "down"); });
}

$("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  startConsole($("token").value.trim()).catch((err) => { $("signin-error").textContent = err.message || String(err); });
});
const savedToken = sessionStorage.getItem("commandToken");
if (savedToken) startConsole(savedToken).catch(() => { $("signin").hidden = false; }); else $("signin").hidden = false;
