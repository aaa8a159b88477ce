// The run page: summary with live T, R, F; cancel and resume; the DAG with live states; the
// Gantt of actual spans beside the plan's; resources in use per node; the task table. Events
// arrive on the run's stream and are applied to the page's model; drawing is throttled.
import { get, post, follow } from "./api.js";
import { h, clear, badge, fmtTime, fmtDur, fmtNum } from "./dom.js";
import { RunModel } from "./model.js";
import { Gantt } from "./gantt.js";
import { Usage } from "./usage.js";
import { Dag } from "./dag.js";
import { TaskTable } from "./tasks.js";
import { openDrawer } from "./drawer.js";
import { setConn } from "./app.js";

const FRAME = 250;  // ms between redraws of a live run

export function runPage(main, runId) {
  let model = null, es = null, runsEs = null, stopped = false, pending = null, lastDraw = 0;
  const pick = (tid) => openDrawer(runId, tid, {
    status: () => (model ? model.run.status : null),
    specName: (id) => (model && model.tasks.get(id) ? model.tasks.get(id).name : id),
    downstream: (name) => (model ? model.downstream(name) : null),
    resumed: (name) => { message.textContent = `Resumed from ${name}.`; if (model) renderHead(); },
  });
  const head = h("div", { class: "run-head" });
  const stats = h("div", { class: "stats", id: "run-stats" });
  const message = h("p", { class: "muted", id: "run-message" });
  const dag = new Dag(pick, (name) => table.show(name));
  const gantt = new Gantt(pick);
  const usage = new Usage();
  const table = new TaskTable(pick);
  main.append(
    h("section", { class: "panel" }, head, stats, message),
    h("section", { class: "panel" }, h("h2", { text: "Graph" }), dag.el),
    h("section", { class: "panel" }, h("h2", { text: "Timeline" },
      h("span", { class: "legend" }, h("i", { class: "lg run" }), "actual ", h("i", { class: "lg plan" }), "planned ",
        h("i", { class: "lg crit" }), "critical path")), gantt.el),
    h("section", { class: "panel" }, h("h2", { text: "Resources in use" }), usage.el),
    h("section", { class: "panel" }, table.el));

  const cancelBtn = h("button", { id: "cancel", class: "danger", text: "Cancel" });
  const resumeBtn = h("button", { id: "resume", text: "Resume" });
  cancelBtn.onclick = () => act("cancel");
  resumeBtn.onclick = () => act("resume");

  async function act(what) {
    cancelBtn.disabled = resumeBtn.disabled = true;
    try {
      await post(`/api/runs/${encodeURIComponent(runId)}/${what}`, {});
      message.textContent = what === "cancel" ? "Cancel requested." : "Resumed.";
    } catch (e) {
      message.textContent = e.message;
    }
    renderHead();
  }

  function renderHead() {
    const r = model.run;
    clear(head);
    head.append(h("h1", {}, h("span", { class: "mono", text: r.run_id }), " ", badge(r.status)),
      h("span", { class: "muted", text: ` ${r.workflow}` }), h("span", { class: "grow" }), cancelBtn, resumeBtn);
    cancelBtn.disabled = !["running", "created"].includes(r.status);
    resumeBtn.disabled = !["failed", "cancelled"].includes(r.status) && !r.attention;
    const c = model.counts();
    const done = (c.succeeded || 0) + (c.failed || 0) + (c.skipped || 0) + (c.cancelled || 0);
    const wall = r.started_at ? (r.finished_at ?? Date.now() / 1000) - r.started_at : null;
    clear(stats);
    stats.append(...[
      stat("started", fmtTime(r.started_at)), stat("wall time", fmtDur(wall)),
      stat("T", fmtDur(r.T), "stat-T"), stat("R", fmtNum(r.R), "stat-R"), stat("F", fmtNum(r.F), "stat-F"),
      stat("tasks", `${done} / ${model.tasks.size}`, "stat-tasks"),
      h("div", { class: "chips" }, Object.entries(c).map(([k, v]) => h("span", { class: `chip st-${k}`, text: `${v} ${k}` }))),
      r.plan ? stat("plan", `T ${fmtDur(r.plan.T)}, bound ${fmtDur(r.plan.lower_bound)}`) : null,
      r.attention ? h("p", { class: "warn", text: r.attention }) : null].filter(Boolean));
  }

  function stat(label, value, id) {
    return h("div", { class: "stat", id }, h("span", { class: "muted", text: label }), h("b", { text: value }));
  }

  function draw() {
    pending = null;
    lastDraw = performance.now();
    renderHead();
    dag.update(model);
    gantt.draw(model);
    usage.draw(model);
    table.refresh(model);
  }

  function schedule() {
    if (pending || stopped) return;
    pending = setTimeout(draw, Math.max(0, FRAME - (performance.now() - lastDraw)));
  }

  async function load() {
    const detail = await get(`/api/runs/${encodeURIComponent(runId)}`);
    if (stopped) return;
    model = new RunModel(detail);
    dag.build(model);
    draw();
    if (es) es.close();
    es = follow(`/api/runs/${encodeURIComponent(runId)}/stream?after=${model.lastSeq}`, "events", (batch) => {
      let ended = false;
      for (const e of batch) if (model.apply(e) && /^Run(Succeeded|Failed|Cancelled)$/.test(e.type)) ended = true;
      if (ended) refetchSoon(); else schedule();
    }, setConn);
  }

  let refetch = null;
  function refetchSoon() {  // the run ended: its critical path and final figures come from the server
    schedule();
    clearTimeout(refetch);
    refetch = setTimeout(async () => {
      try {
        const detail = await get(`/api/runs/${encodeURIComponent(runId)}`);
        if (stopped || detail.last_seq < model.lastSeq) return;
        Object.assign(model.run, detail, { tasks: undefined, spans: undefined });
        model.critical = new Set(detail.critical_path || []);
        schedule();
      } catch (e) { /* keep the live view */ }
    }, 600);
  }

  // live T, R and F of this run arrive with the runs list's stream
  runsEs = follow("/api/stream/runs", "runs", (batch) => {
    for (const s of batch) {
      if (s.run_id !== runId || !model) continue;
      for (const k of ["T", "R", "F", "attention", "owner"]) model.run[k] = s[k];
      schedule();
    }
  });
  const ticker = setInterval(() => { if (model && model.run.status === "running") schedule(); }, 1000);

  load().catch((e) => {
    clear(head);
    head.append(h("h1", { class: "mono", text: runId }), h("p", { class: "error", id: "run-error", text: e.message }));
  });
  return { stop() { stopped = true; if (es) es.close(); runsEs.close(); clearInterval(ticker); clearTimeout(pending); clearTimeout(refetch); setConn(""); } };
}
