// The runs list: filterable, paginated, live (changed run summaries arrive on a stream).
import { get, follow } from "./api.js";
import { h, clear, badge, fmtTime, fmtDur, fmtNum } from "./dom.js";
import { setConn } from "./app.js";

const PAGE = 50;
const STATUSES = ["", "created", "running", "succeeded", "failed", "cancelled"];

export function runsPage(main, query) {
  const state = {
    status: query.get("status") || "", workflow: query.get("workflow") || "", q: query.get("q") || "",
    offset: Number(query.get("offset") || 0), items: [], total: 0,
  };
  const wfSelect = h("select", { id: "f-workflow", "aria-label": "workflow" }, h("option", { value: "", text: "all workflows" }));
  const stSelect = h("select", { id: "f-status", "aria-label": "status" },
    STATUSES.map((s) => h("option", { value: s, text: s || "any status" })));
  const search = h("input", { id: "f-q", type: "search", placeholder: "run id or workflow", value: state.q });
  const body = h("tbody", { id: "runs-body" });
  const pager = h("div", { class: "pager" });
  const total = h("span", { class: "muted", id: "runs-total" });
  stSelect.value = state.status;
  main.append(
    h("section", { class: "panel" },
      h("div", { class: "toolbar" }, h("h1", { text: "Runs" }), total, h("span", { class: "grow" }), stSelect, wfSelect, search),
      h("table", { class: "runs" },
        h("thead", {}, h("tr", {}, ["run", "workflow", "status", "started", "duration", "tasks", "T", "R", "F"].map((c) => h("th", { text: c })))),
        body),
      pager));

  get("/api/workflows").then((wfs) => {
    for (const w of wfs) wfSelect.append(h("option", { value: w.name, text: w.name }));
    wfSelect.value = state.workflow;
  }).catch(() => {});

  let timer = null, stale = false, stopped = false;
  async function load() {
    const page = await get("/api/runs", {
      status: state.status, workflow: state.workflow, q: state.q, limit: PAGE, offset: state.offset,
    });
    state.items = page.items; state.total = page.total;
    render();
  }
  function refreshSoon() {  // a run appeared or left the filter: reload the page, at most twice a second
    if (timer) { stale = true; return; }
    timer = setTimeout(() => { timer = null; load().catch(() => {}); if (stale) { stale = false; refreshSoon(); } }, 500);
  }
  function matches(s) {
    return (!state.status || s.status === state.status) && (!state.workflow || s.workflow === state.workflow) &&
      (!state.q || s.run_id.toLowerCase().includes(state.q.toLowerCase()) || s.workflow.toLowerCase().includes(state.q.toLowerCase()));
  }
  function row(s) {
    const started = s.started_at || s.created_at;
    const c = s.counts || {};
    const done = (c.succeeded || 0) + (c.failed || 0) + (c.skipped || 0) + (c.cancelled || 0);
    return h("tr", { "data-run": s.run_id, class: "click", onclick: () => { location.hash = `#/runs/${encodeURIComponent(s.run_id)}`; } },
      h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(s.run_id)}`, text: s.run_id, class: "mono" })),
      h("td", { text: s.workflow }),
      h("td", {}, badge(s.status), s.attention ? h("span", { class: "warn", title: s.attention, text: " ⚠" }) : null),
      h("td", { text: fmtTime(started) }),
      h("td", { text: fmtDur(s.wall_time) }),
      h("td", { text: `${done}/${s.tasks_total}` }),
      h("td", { text: fmtDur(s.T) }), h("td", { text: fmtNum(s.R) }), h("td", { text: fmtNum(s.F) }));
  }
  function render() {
    clear(body);
    if (!state.items.length) body.append(h("tr", {}, h("td", { colspan: 9, class: "muted", text: "No runs match." })));
    for (const s of state.items) body.append(row(s));
    total.textContent = `${state.total} run${state.total === 1 ? "" : "s"}`;
    clear(pager);
    const last = Math.max(0, Math.floor((state.total - 1) / PAGE) * PAGE);
    pager.append(
      h("button", { disabled: state.offset === 0, onclick: () => go(Math.max(0, state.offset - PAGE)), text: "‹ newer" }),
      h("span", { class: "muted", text: ` ${state.total ? state.offset + 1 : 0}–${Math.min(state.offset + PAGE, state.total)} ` }),
      h("button", { disabled: state.offset >= last, onclick: () => go(state.offset + PAGE), text: "older ›" }));
  }
  function go(offset) { state.offset = offset; pushQuery(); load().catch(() => {}); }
  function pushQuery() {
    const q = new URLSearchParams();
    for (const k of ["status", "workflow", "q"]) if (state[k]) q.set(k, state[k]);
    if (state.offset) q.set("offset", state.offset);
    history.replaceState(null, "", `#/${q.toString() ? "?" + q : ""}`);
  }
  stSelect.onchange = () => { state.status = stSelect.value; state.offset = 0; pushQuery(); load().catch(() => {}); };
  wfSelect.onchange = () => { state.workflow = wfSelect.value; state.offset = 0; pushQuery(); load().catch(() => {}); };
  let typing = null;
  search.oninput = () => { clearTimeout(typing); typing = setTimeout(() => { state.q = search.value.trim(); state.offset = 0; pushQuery(); load().catch(() => {}); }, 250); };

  const es = follow("/api/stream/runs", "runs", (batch) => {
    if (stopped) return;
    let changed = false;
    for (const s of batch) {
      const i = state.items.findIndex((x) => x.run_id === s.run_id);
      if (i >= 0) {
        if (matches(s)) { state.items[i] = s; changed = true; } else refreshSoon();
      } else if (matches(s) && state.offset === 0) refreshSoon();
    }
    if (changed) render();
  }, setConn);
  load().catch((e) => { clear(body); body.append(h("tr", {}, h("td", { colspan: 9, class: "error", text: e.message }))); });
  return { stop() { stopped = true; es.close(); clearTimeout(timer); setConn(""); } };
}
