// Resources in use against capacity per node over time, from the spans and what each attempt
// held: a step line per node and resource (cpu, memory, gpu), capacity as a dashed line.
import { h, fmtBytes, fmtNum } from "./dom.js";

const H = 70, LABEL = 120;

export class Usage {
  constructor() {
    this.canvas = h("canvas", { id: "usage", class: "usage", role: "img", "aria-label": "resources in use" });
    this.el = h("div", { class: "usage-box" }, this.canvas);
  }

  draw(model) {
    const now = Date.now() / 1000;
    const [t0, t1] = model.bounds(now);
    const caps = new Map((model.run.nodes || []).map((n) => [n.name, n.capacity || {}]));
    const series = new Map();  // `${node} ${res}` -> [[t, +/-amount]]
    for (const sp of model.spans) {
      const t = model.tasks.get(sp.tid);
      const res = (t && t.resources) || {};
      for (const [k, v] of Object.entries(res)) {
        if (!v) continue;
        const key = `${sp.node || "?"}\u0000${k}`;
        if (!series.has(key)) series.set(key, []);
        const s = series.get(key);
        s.push([sp.start, v]);
        s.push([sp.end ?? now, -v]);
      }
    }
    const keys = [...series.keys()].sort();
    const width = Math.max(400, this.el.clientWidth || 800);
    const height = Math.max(30, keys.length * (H + 10));
    const dpr = window.devicePixelRatio || 1;
    const c = this.canvas;
    c.width = width * dpr; c.height = height * dpr;
    c.style.width = `${width}px`; c.style.height = `${height}px`;
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = "11px system-ui, sans-serif"; g.textBaseline = "top";
    const scale = (width - LABEL - 8) / (t1 - t0);
    keys.forEach((key, i) => {
      const [node, res] = key.split("\u0000");
      const steps = series.get(key).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      let cur = 0, peak = 0;
      const pts = [];
      for (const [t, d] of steps) { cur += d; pts.push([t, cur]); peak = Math.max(peak, cur); }
      const cap = caps.get(node) ? caps.get(node)[res] : undefined;
      const top = Math.max(peak, cap || 0) || 1;
      const y0 = i * (H + 10);
      const fmt = res === "memory" ? fmtBytes : fmtNum;
      g.fillStyle = "#111827";
      g.fillText(`${node} ${res}`, 4, y0 + 2);
      g.fillStyle = "#6b7280";
      g.fillText(`peak ${fmt(peak)}${cap ? ` / ${fmt(cap)}` : ""}`, 4, y0 + 16);
      g.strokeStyle = "#e5e7eb"; g.strokeRect(LABEL, y0, width - LABEL - 8, H);
      if (cap) {
        const yc = y0 + H - (cap / top) * H;
        g.setLineDash([4, 3]); g.strokeStyle = "#d9534f"; g.beginPath(); g.moveTo(LABEL, yc); g.lineTo(width - 8, yc); g.stroke(); g.setLineDash([]);
      }
      g.fillStyle = "rgba(91,141,239,0.35)"; g.strokeStyle = "#5b8def";
      g.beginPath();
      g.moveTo(LABEL, y0 + H);
      let prev = 0;
      for (const [t, v] of pts) {
        const x = LABEL + (t - t0) * scale;
        g.lineTo(x, y0 + H - (prev / top) * H);
        g.lineTo(x, y0 + H - (v / top) * H);
        prev = v;
      }
      g.lineTo(width - 8, y0 + H - (prev / top) * H);
      g.lineTo(width - 8, y0 + H);
      g.closePath(); g.fill(); g.stroke();
    });
    c.dataset.series = String(keys.length);
  }
}
