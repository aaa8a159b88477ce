// The task drawer: attempts with their outcomes, the failure (kind, message, frame,
// traceback), the log tail that follows while the task runs, resources requested against
// used, a preview of the result, and, for a finished run, "resume from this task" (asked
// twice: the button, then a confirmation naming what runs again).
import { get, post } from "./api.js";
import { h, clear, badge, fmtTime, fmtDur, fmtBytes, fmtNum } from "./dom.js";

let timer = null;

export function closeDrawer() {
  const el = document.getElementById("drawer");
  if (el) { el.hidden = true; clear(el); }
  clearTimeout(timer); timer = null;
}

function kv(rows) {
  return h("table", { class: "kv" }, rows.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", {}, v))));
}

function resources(t) {
  const used = t.usage || {};
  const rows = Object.entries(t.resources || {}).map(([k, v]) => [
    k, `${k === "memory" ? fmtBytes(v) : fmtNum(v)} requested; used: ` +
      (k === "memory" ? (used.peak_memory != null ? fmtBytes(used.peak_memory) + " peak" : "not measured")
        : k === "cpu" ? (used.cpu_time != null && t.duration ? `${fmtNum(used.cpu_time / t.duration, 3)} cpu (cpu time / wall time)` : "not measured")
          : "not measured")]);
  return rows.length ? kv(rows) : h("p", { class: "muted", text: "no resources recorded" });
}

const FINISHED = ["succeeded", "failed", "cancelled"];

// "Resume from this task": POST .../resume {from} once confirmed. The request goes with the
// session like the run page's other actions; a refusal (409, 401, 403...) is shown as given.
// `run` is what the run page knows: status(), specName(id), downstream(name), resumed(name).
function resumeFrom(runId, taskId, run) {
  const name = run.specName(taskId);
  const box = h("div", { class: "resume-from", id: "resume-from-box" });
  const note = h("p", { class: "muted", id: "resume-from-message" });
  const ask = h("button", { id: "resume-from", text: "Resume from this task" });
  const show = (...parts) => { clear(box); box.append(...parts, note); };
  ask.onclick = () => {
    const down = run.downstream(name);
    const what = down === null ? "everything downstream of it" : down.length === 0 ? "nothing downstream of it (none depends on it)"
      : `the ${down.length} task${down.length === 1 ? "" : "s"} downstream of it (${down.join(", ")})`;
    const yes = h("button", { id: "resume-from-confirm", class: "danger", text: "Run again" });
    const no = h("button", { id: "resume-from-keep", text: "Keep the results" });
    show(h("p", { id: "resume-from-question" },
      name === taskId ? "" : `${taskId} is an item of the map ${name}: the whole map runs again. `,
      `Run ${name} and ${what} again? Their results are dropped; tasks upstream keep theirs.`), yes, " ", no);
    no.onclick = () => { note.textContent = ""; show(ask); };
    yes.onclick = async () => {
      yes.disabled = no.disabled = true;
      note.textContent = "Resuming…";
      try {
        await post(`/api/runs/${encodeURIComponent(runId)}/resume`, { from: name });
        note.textContent = `Resumed from ${name}: it and ${down === null ? "its downstream tasks" : `${down.length} downstream task${down.length === 1 ? "" : "s"}`} run again.`;
        note.className = "ok";
        show();
        run.resumed(name);
      } catch (e) {
        note.textContent = e.message;
        note.className = "error";
        show(ask);
      }
    };
  };
  show(ask);
  return box;
}

export async function openDrawer(runId, taskId, run = null) {
  const el = document.getElementById("drawer");
  clearTimeout(timer);
  clear(el);
  el.hidden = false;
  const close = h("button", { class: "close", "aria-label": "close", text: "×", onclick: closeDrawer });
  const body = h("div", { class: "drawer-body" }, h("p", { class: "muted", text: "loading…" }));
  el.append(h("div", { class: "drawer-head" }, h("h2", { class: "mono", id: "drawer-title", text: taskId }), close), body);
  let t;
  try {
    t = await get(`/api/runs/${encodeURIComponent(runId)}/tasks/${encodeURIComponent(taskId)}`);
  } catch (e) {
    clear(body); body.append(h("p", { class: "error", text: e.message })); return;
  }
  clear(body);
  body.append(
    kv([["state", badge(t.status)], ["node", t.node || "–"], ["attempts", String(t.attempts)],
      ["started", fmtTime(t.started_at)], ["duration", fmtDur(t.duration)],
      ["cached", t.cached ? "yes (result reused)" : "no"], ...(t.skip_reason ? [["skipped", t.skip_reason]] : [])]));
  if (run && FINISHED.includes(run.status())) body.append(resumeFrom(runId, taskId, run));
  if (t.error) {
    body.append(h("h3", { text: "Failure" }), kv([["kind", h("span", { class: "badge st-failed", id: "failure-kind", text: t.error.kind })],
      ["error", `${t.error.type}: ${t.error.message}`], ...(t.error.frame ? [["where", t.error.frame]] : [])]));
  }
  body.append(h("h3", { text: "Attempts" }), h("table", { class: "attempts", id: "attempts" },
    h("tr", {}, ["#", "node", "started", "duration", "outcome"].map((c) => h("th", { text: c }))),
    t.attempts_detail.map((a) => h("tr", {}, h("td", { text: a.attempt }), h("td", { text: a.node || "–" }),
      h("td", { text: fmtTime(a.started_at) }), h("td", { text: fmtDur(a.duration) }),
      h("td", {}, a.outcome ? badge(a.outcome === "succeeded" ? "succeeded" : a.outcome === "interrupted" ? "pending" : a.outcome === "cancelled" ? "cancelled" : "failed") : badge("running"),
        a.outcome && !["succeeded", "interrupted", "cancelled"].includes(a.outcome) ? ` ${a.outcome}` : "")))));
  const tb = [...t.attempts_detail].reverse().find((a) => a.error && a.error.traceback);
  if (tb) body.append(h("h3", { text: "Traceback" }), h("pre", { class: "trace", text: tb.error.traceback }));
  body.append(h("h3", { text: "Resources" }), resources(t));
  const log = h("pre", { class: "log", id: "log-tail" });
  body.append(h("h3", { text: "Output" }), log);
  const showLog = (text, available) => {
    log.textContent = text || (available ? "(no output yet)" : "(no output captured: this store keeps no task logs)");
  };
  showLog(t.log_tail, false);
  const follow = async () => {
    if (el.hidden) return;
    try {
      const r = await get(`/api/runs/${encodeURIComponent(runId)}/logs`, { task: taskId, tail: 65536 });
      showLog(r.text, r.available);
      log.scrollTop = log.scrollHeight;
    } catch (e) { /* the task may be gone; keep what is shown */ }
    if (["running", "queued", "retrying"].includes(t.status)) timer = setTimeout(follow, 1000);
  };
  if (["running", "queued", "retrying"].includes(t.status)) timer = setTimeout(follow, 1000);
  body.append(h("h3", { text: "Result" }));
  if (!t.result) body.append(h("p", { class: "muted", text: t.status === "succeeded" ? "no result stored" : "no result yet" }));
  else if (t.result.note) body.append(h("p", { class: "muted", text: `${t.result.note} (${fmtBytes(t.result.bytes)})` }));
  else body.append(h("pre", { class: "result", id: "result-preview",
    text: (typeof t.result.value === "string" ? t.result.value : JSON.stringify(t.result.value, null, 2)) + (t.result.truncated ? "\n…" : "") }));
}

document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeDrawer(); });
