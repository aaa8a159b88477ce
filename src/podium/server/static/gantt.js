// The live Gantt chart: the actual span of every attempt in its node's lane (parallel spans
// in rows of that lane), the plan's spans in a lane beside them, the critical path outlined.
// Drawn on a canvas, so 10,000 spans cost no DOM nodes; hover and click find the span under
// the pointer by row.
import { h, STATE_COLORS, fmtDur } from "./dom.js";

const ROW = 12, GAP = 3, LABEL = 120, AXIS = 18;

function rowsOf(spans, now) {
  // greedy: each span goes to the first row of its lane that is free at its start
  const sorted = spans.slice().sort((a, b) => a.start - b.start);
  const ends = [], rows = [];
  for (const sp of sorted) {
    const end = sp.end ?? now;
    let r = 0;
    while (r < ends.length && ends[r] > sp.start + 1e-9) r++;
    if (r === ends.length) { ends.push(end); rows.push([]); } else ends[r] = end;
    rows[r].push(sp);
  }
  return rows;
}

export class Gantt {
  constructor(onPick) {
    this.canvas = h("canvas", { id: "gantt", class: "gantt", role: "img", "aria-label": "Gantt chart" });
    this.tip = h("div", { class: "tip", hidden: true });
    this.el = h("div", { class: "gantt-box" }, this.canvas, this.tip);
    this.lanes = [];
    this.onPick = onPick;
    this.canvas.addEventListener("mousemove", (ev) => this.hover(ev));
    this.canvas.addEventListener("mouseleave", () => { this.tip.hidden = true; });
    this.canvas.addEventListener("click", (ev) => { const sp = this.at(ev); if (sp) this.onPick(sp.tid); });
  }

  draw(model) {
    const now = Date.now() / 1000;
    const [t0, t1] = model.bounds(now);
    this.t0 = t0; this.t1 = t1;
    const byNode = new Map();
    for (const sp of model.spans) {
      const k = sp.node || "?";
      if (!byNode.has(k)) byNode.set(k, []);
      byNode.get(k).push(sp);
    }
    const lanes = [];
    for (const node of [...byNode.keys()].sort()) lanes.push({ label: node, rows: rowsOf(byNode.get(node), now), planned: false });
    const planned = model.run.planned;
    let nPlanned = 0;
    if (planned && planned.spans) {
      const ps = Object.entries(planned.spans).map(([tid, [s, e]]) => ({ tid, start: t0 + s, end: t0 + e, outcome: "planned" }));
      nPlanned = ps.length;
      if (ps.length) lanes.push({ label: "plan", rows: rowsOf(ps, now), planned: true });
    }
    this.lanes = lanes;
    const width = Math.max(400, this.el.clientWidth || 800);
    let height = AXIS;
    for (const l of lanes) height += l.rows.length * (ROW + GAP) + 8;
    height = Math.max(height, 60);
    const dpr = window.devicePixelRatio || 1;
    const c = this.canvas;
    c.width = width * dpr; c.height = height * dpr;
    c.style.width = `${width}px`; c.style.height = `${height}px`;
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    const scale = (width - LABEL - 8) / (t1 - t0);
    this.scale = scale;
    // axis
    g.fillStyle = "#6b7280"; g.font = "11px system-ui, sans-serif"; g.textBaseline = "middle";
    const step = niceStep((t1 - t0) / 8);
    for (let t = 0; t <= t1 - t0 + 1e-9; t += step) {
      const x = LABEL + t * scale;
      g.fillRect(x, AXIS - 4, 1, 4);
      g.fillText(fmtDur(t), x + 2, 7);
    }
    let y = AXIS, bars = 0, crit = 0;
    for (const lane of lanes) {
      lane.y = y;
      g.fillStyle = lane.planned ? "#5b8def" : "#111827";
      g.fillText(lane.label, 4, y + ROW / 2);
      lane.rows.forEach((row, r) => {
        const ry = y + r * (ROW + GAP);
        for (const sp of row) {
          const x = LABEL + (sp.start - t0) * scale;
          const w = Math.max(1, ((sp.end ?? now) - sp.start) * scale);
          if (lane.planned) {
            g.strokeStyle = "#5b8def"; g.lineWidth = 1;
            g.strokeRect(x + 0.5, ry + 0.5, w - 1, ROW - 1);
          } else {
            g.fillStyle = STATE_COLORS[sp.end === null ? "running" : sp.outcome === "succeeded" ? "succeeded"
              : sp.outcome === "cancelled" ? "cancelled" : sp.outcome === "interrupted" ? "interrupted" : "failed"];
            g.fillRect(x, ry, w, ROW);
            bars++;
          }
          if (model.critical.has(sp.tid) && !lane.planned && sp.end !== null && sp.outcome === "succeeded") {
            g.strokeStyle = "#7f1d1d"; g.lineWidth = 2;
            g.strokeRect(x + 1, ry + 1, Math.max(1, w - 2), ROW - 2);
            crit++;
          }
        }
      });
      y += lane.rows.length * (ROW + GAP) + 8;
    }
    c.dataset.bars = String(bars);
    c.dataset.planned = String(nPlanned);
    c.dataset.critical = String(crit);
    c.dataset.lanes = lanes.map((l) => l.label).join(",");
  }

  at(ev) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ev.clientX - rect.left, y = ev.clientY - rect.top;
    const t = this.t0 + (x - LABEL) / this.scale;
    for (const lane of this.lanes) {
      const r = Math.floor((y - lane.y) / (ROW + GAP));
      if (r < 0 || r >= lane.rows.length) continue;
      for (const sp of lane.rows[r]) if (sp.start <= t && t <= (sp.end ?? Infinity)) return sp;
    }
    return null;
  }

  hover(ev) {
    const sp = this.at(ev);
    if (!sp) { this.tip.hidden = true; return; }
    const end = sp.end ?? Date.now() / 1000;
    this.tip.textContent = `${sp.tid}${sp.attempt ? ` (attempt ${sp.attempt})` : ""}: ${sp.outcome || "running"}, ${fmtDur(end - sp.start)}`;
    this.tip.hidden = false;
    const rect = this.el.getBoundingClientRect();
    this.tip.style.left = `${ev.clientX - rect.left + 12}px`;
    this.tip.style.top = `${ev.clientY - rect.top + 12}px`;
  }
}

function niceStep(x) {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(x, 1e-3))));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}
