// The web UI: a hash router over three pages (runs list, run, start a run) and the task drawer.
import { clear } from "./dom.js";
import { runsPage } from "./runs.js";
import { runPage } from "./run.js";
import { startPage } from "./start.js";
import { closeDrawer } from "./drawer.js";

let current = null;  // the page shown: { stop() }

function route() {
  const main = document.getElementById("main");
  if (current && current.stop) current.stop();
  closeDrawer();
  clear(main);
  const hash = location.hash.replace(/^#/, "") || "/";
  const run = hash.match(/^\/runs\/([^/?]+)/);
  document.getElementById("nav-runs").classList.toggle("on", !run && !hash.startsWith("/start"));
  document.getElementById("nav-start").classList.toggle("on", hash.startsWith("/start"));
  if (run) current = runPage(main, decodeURIComponent(run[1]));
  else if (hash.startsWith("/start")) current = startPage(main, new URLSearchParams(hash.split("?")[1] || "").get("workflow"));
  else current = runsPage(main, new URLSearchParams(hash.split("?")[1] || ""));
}

export function setConn(state) {
  const el = document.getElementById("conn");
  el.textContent = state === "live" ? "● live" : state === "reconnecting" ? "● reconnecting" : "";
  el.className = `conn ${state}`;
}

window.addEventListener("hashchange", route);
route();
