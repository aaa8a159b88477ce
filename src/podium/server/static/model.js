// A run as the page knows it: the server's RunDetail, then every event applied as it arrives
// (the same transitions as the server's fold), so a live page never refetches its tasks.
const FINAL = { RunSucceeded: "succeeded", RunFailed: "failed", RunCancelled: "cancelled" };

function pendingRow(id) {
  const i = id.indexOf("[");
  return {
    task_id: id, name: i > 0 && id.endsWith("]") ? id.slice(0, i) : id, map_index: i > 0 ? Number(id.slice(i + 1, -1)) : null,
    status: "pending", attempts: 0, node: null, queued_at: null, started_at: null, finished_at: null, duration: null,
    resources: {}, cached: false, skip_reason: null, children: null, error: null,
  };
}

export class RunModel {
  constructor(detail) {
    this.detail = detail;
    this.run = { ...detail };
    delete this.run.tasks; delete this.run.spans;
    this.tasks = new Map(detail.tasks.map((t) => [t.task_id, t]));
    this.spans = [];
    this.open = new Map();
    for (const [tid, attempt, node, start, end, outcome] of detail.spans) {
      const sp = { tid, attempt, node, start, end, outcome };
      this.spans.push(sp);
      if (end === null) this.open.set(tid, sp);
    }
    this.lastSeq = detail.last_seq;
    this.critical = new Set(detail.critical_path || []);
    this.version = 0;
  }

  task(id) {
    let t = this.tasks.get(id);
    if (!t) { t = pendingRow(id); this.tasks.set(id, t); }
    return t;
  }

  close(id, ts, outcome) {
    const sp = this.open.get(id);
    if (sp) { sp.end = ts; sp.outcome = outcome; this.open.delete(id); }
  }

  apply(e) {
    if (e.seq <= this.lastSeq) return false;  // seen already (a reconnect repeats nothing, but be sure)
    this.lastSeq = e.seq;
    this.version++;
    const d = e.data || {};
    if (e.task_id === null || e.task_id === undefined) {
      if (e.type === "RunStarted") { this.run.status = "running"; this.run.started_at ??= e.ts; this.run.finished_at = null; }
      else if (FINAL[e.type]) { this.run.status = FINAL[e.type]; this.run.finished_at = e.ts; }
      else if (e.type === "PlanMade") this.run.plan = { ...(this.run.plan || {}), ...d };
      return true;
    }
    const t = this.task(e.task_id);
    switch (e.type) {
      case "TaskQueued": t.status = "queued"; t.queued_at = e.ts; break;
      case "TaskStarted": {
        t.status = "running"; t.attempts = e.attempt; t.started_at = e.ts; t.finished_at = null;
        t.node = d.node ?? t.node; if (d.res) t.resources = d.res;
        const sp = { tid: t.task_id, attempt: e.attempt, node: t.node, start: e.ts, end: null, outcome: null };
        this.spans.push(sp); this.open.set(t.task_id, sp);
        break;
      }
      case "TaskSucceeded":
        t.status = "succeeded"; t.finished_at = e.ts; if (d.duration !== undefined) t.duration = d.duration;
        if (d.cached) t.cached = true; t.error = null; this.close(t.task_id, e.ts, "succeeded"); break;
      case "TaskFailed": case "TaskRetrying":
        t.status = e.type === "TaskFailed" ? "failed" : "retrying"; t.finished_at = e.ts; t.error = d.error || null;
        this.close(t.task_id, e.ts, (d.error && d.error.kind) || "user"); break;
      case "TaskCancelled": t.status = "cancelled"; t.finished_at = e.ts; this.close(t.task_id, e.ts, "cancelled"); break;
      case "TaskSkipped": t.status = "skipped"; t.skip_reason = d.reason || null; break;
      case "TaskExpanded":
        // expanded again after `resume --from` into fewer items: the items beyond are gone
        for (let i = d.count; i < (t.children ?? 0); i++) this.tasks.delete(`${t.task_id}[${i}]`);
        t.status = "expanded"; t.children = d.count;
        for (let i = 0; i < d.count; i++) this.task(`${t.task_id}[${i}]`);
        break;
      case "TaskReset": t.status = "pending"; t.error = null; this.close(t.task_id, e.ts, "interrupted"); break;
      case "TaskInvalidated": t.status = "pending"; t.cached = false; break;
      case "TaskCleared": t.status = "pending"; t.cached = false; t.error = null; t.skip_reason = null; break;
      default: break;
    }
    return true;
  }

  // the spec tasks that depend on `name`, directly or not (what `resume --from name` runs
  // again besides it); null when the run's graph is not known to this server
  downstream(name) {
    const graph = this.run.graph;
    if (!graph) return null;
    const down = new Map(graph.map((g) => [g.name, []]));
    for (const g of graph) for (const d of g.deps) if (down.has(d)) down.get(d).push(g.name);
    const seen = new Set([name]), stack = [name];
    while (stack.length) for (const n of down.get(stack.pop()) || []) if (!seen.has(n)) { seen.add(n); stack.push(n); }
    seen.delete(name);
    return graph.map((g) => g.name).filter((n) => seen.has(n));
  }

  counts() {
    const c = {};
    for (const t of this.tasks.values()) c[t.status] = (c[t.status] || 0) + 1;
    return c;
  }

  // spec-level state: a map's items counted by state, a plain task's own state
  specState(name) {
    const t = this.tasks.get(name);
    if (t && t.children !== null && t.children !== undefined) {
      const c = {};
      for (let i = 0; i < t.children; i++) {
        const it = this.tasks.get(`${name}[${i}]`);
        const st = it ? it.status : "pending";
        c[st] = (c[st] || 0) + 1;
      }
      return { status: t.status, items: t.children, counts: c };
    }
    return { status: t ? t.status : "pending", items: null, counts: null };
  }

  bounds(now) {
    let t0 = this.run.started_at ?? Infinity, t1 = -Infinity;
    for (const sp of this.spans) {
      if (sp.start < t0) t0 = sp.start;
      const end = sp.end ?? now;
      if (end > t1) t1 = end;
    }
    if (!isFinite(t0)) t0 = now;
    if (this.run.finished_at) t1 = Math.max(t1, this.run.finished_at);
    else t1 = Math.max(t1, now);
    if (this.run.planned) t1 = Math.max(t1, t0 + this.run.planned.T);
    return [t0, Math.max(t1, t0 + 0.001)];
  }
}
