// The workflow's DAG with live states: one node per spec task, a map as one node with its
// items counted by state (click to list its items), layers left to right. A graph of more
// than MAX_NODES tasks is drawn as one box per layer with its tasks counted by state.
import { s, h, clear, STATE_COLORS } from "./dom.js";

const W = 170, HN = 40, DX = 210, DY = 54, MAX_NODES = 250;

function layers(graph) {
  const depth = new Map();
  for (const g of graph) {  // the server sends tasks in declaration order; deps may come later
    depth.set(g.name, 0);
  }
  for (let changed = true, guard = 0; changed && guard < graph.length + 1; guard++) {
    changed = false;
    for (const g of graph) {
      const d = Math.max(0, ...g.deps.map((x) => (depth.get(x) ?? -1) + 1));
      if (d !== depth.get(g.name)) { depth.set(g.name, d); changed = true; }
    }
  }
  return depth;
}

function dominant(counts, fallback) {
  for (const st of ["failed", "running", "retrying", "queued", "cancelled", "pending", "skipped", "succeeded"]) if (counts[st]) return st;
  return fallback;
}

export class Dag {
  constructor(onTask, onMap) {
    this.onTask = onTask; this.onMap = onMap;
    this.svg = s("svg", { class: "dag", id: "dag" });
    this.note = h("p", { class: "muted" });
    this.el = h("div", { class: "dag-box" }, this.note, this.svg);
    this.nodes = null;
  }

  build(model) {
    let graph = model.run.graph;
    if (!graph) {
      const names = [...new Set([...model.tasks.values()].map((t) => t.name))];
      graph = names.map((n) => ({ name: n, deps: [], map: [...model.tasks.values()].some((t) => t.task_id === n && t.children !== null) }));
      this.note.textContent = "This run's workflow is not registered with this server (or changed since): dependencies are not shown.";
    }
    this.graph = graph;
    this.aggregate = graph.length > MAX_NODES;
    if (this.aggregate) this.note.textContent = `${graph.length} tasks: shown as one box per layer.`;
    const depth = layers(graph);
    clear(this.svg);
    this.nodes = new Map();
    if (this.aggregate) {
      const byLayer = new Map();
      for (const g of graph) {
        const d = depth.get(g.name);
        if (!byLayer.has(d)) byLayer.set(d, []);
        byLayer.get(d).push(g.name);
      }
      this.layers = byLayer;
      let i = 0;
      for (const [d, names] of [...byLayer.entries()].sort((a, b) => a[0] - b[0])) {
        const x = 10 + (i % 6) * DX, y = 10 + Math.floor(i / 6) * DY;
        const rect = s("rect", { x, y, width: W, height: HN, rx: 6 });
        const label = s("text", { x: x + 8, y: y + 16, class: "name" });
        label.textContent = `layer ${d + 1}: ${names.length} tasks`;
        const sub = s("text", { x: x + 8, y: y + 31, class: "sub" });
        const group = s("g", { class: "node", "data-layer": d }, rect, label, sub);
        this.svg.append(group);
        this.nodes.set(`layer:${d}`, { rect, sub, names });
        i++;
      }
      this.svg.setAttribute("width", 10 + Math.min(6, byLayer.size) * DX);
      this.svg.setAttribute("height", 20 + Math.ceil(byLayer.size / 6) * DY);
      return;
    }
    const perLayer = new Map();
    const pos = new Map();
    for (const g of graph) {
      const d = depth.get(g.name);
      const k = perLayer.get(d) || 0;
      perLayer.set(d, k + 1);
      pos.set(g.name, [10 + d * DX, 10 + k * DY]);
    }
    const edges = s("g", { class: "edges" });
    this.svg.append(edges);
    for (const g of graph) {
      const [x2, y2] = pos.get(g.name);
      for (const dep of g.deps) {
        const p = pos.get(dep);
        if (!p) continue;
        const [x1, y1] = p;
        const a = x1 + W, b = y1 + HN / 2, c = x2, e = y2 + HN / 2, m = (a + c) / 2;
        edges.append(s("path", { d: `M${a},${b} C${m},${b} ${m},${e} ${c},${e}`, class: "edge" }));
      }
    }
    for (const g of graph) {
      const [x, y] = pos.get(g.name);
      const rect = s("rect", { x, y, width: W, height: HN, rx: 6 });
      const label = s("text", { x: x + 8, y: y + 16, class: "name" });
      label.textContent = g.name.length > 24 ? g.name.slice(0, 23) + "…" : g.name;
      const title = s("title");
      title.textContent = g.name;
      const sub = s("text", { x: x + 8, y: y + 31, class: "sub" });
      const group = s("g", { class: `node${g.map ? " map" : ""}`, "data-task": g.name }, title, rect, label, sub);
      group.addEventListener("click", () => (g.map && model.tasks.get(g.name)?.children != null ? this.onMap(g.name) : this.onTask(g.name)));
      this.svg.append(group);
      this.nodes.set(g.name, { rect, sub, group, map: g.map });
    }
    this.svg.setAttribute("width", 20 + (Math.max(...depth.values(), 0) + 1) * DX);
    this.svg.setAttribute("height", 20 + Math.max(...perLayer.values(), 1) * DY);
  }

  update(model) {
    if (!this.nodes) this.build(model);
    if (this.aggregate) {
      for (const { rect, sub, names } of this.nodes.values()) {
        const c = {};
        for (const n of names) { const st = model.specState(n); c[st.status] = (c[st.status] || 0) + 1; }
        rect.setAttribute("fill", STATE_COLORS[dominant(c, "pending")]);
        sub.textContent = Object.entries(c).map(([k, v]) => `${v} ${k}`).join(", ");
      }
      return;
    }
    for (const [name, n] of this.nodes) {
      const st = model.specState(name);
      let status = st.status;
      if (st.counts) {
        status = st.status === "expanded" ? dominant(st.counts, "running") : st.status;
        const done = st.counts.succeeded || 0;
        n.sub.textContent = `map of ${st.items}: ${done} ✓` + (st.counts.running ? `, ${st.counts.running} running` : "") +
          (st.counts.failed ? `, ${st.counts.failed} failed` : "");
      } else {
        n.sub.textContent = status;
      }
      n.rect.setAttribute("fill", STATE_COLORS[status] || "#ccc");
      n.group.dataset.status = status;
    }
  }
}
