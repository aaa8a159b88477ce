// The task table, virtualised: only the rows in view exist in the DOM (a 10,000-task run
// has about 30 row elements), filtered by text and state.
import { h, clear, badge, fmtDur } from "./dom.js";

const ROW = 26, VIEW = 360;

export class TaskTable {
  constructor(onPick) {
    this.onPick = onPick;
    this.filter = h("input", { type: "search", placeholder: "filter tasks", id: "task-filter", "aria-label": "filter tasks" });
    this.state = h("select", { id: "task-state", "aria-label": "task state" },
      ["", "pending", "queued", "running", "retrying", "expanded", "succeeded", "failed", "skipped", "cancelled"]
        .map((x) => h("option", { value: x, text: x || "any state" })));
    this.count = h("span", { class: "muted" });
    this.spacer = h("div", { class: "spacer" });
    this.rows = h("div", { class: "rows" });
    this.scroller = h("div", { class: "scroller", id: "task-rows" }, this.spacer, this.rows);
    this.scroller.style.height = `${VIEW}px`;  // through CSSOM: the page's CSP allows no style attributes
    this.el = h("div", { class: "tasks" },
      h("div", { class: "toolbar" }, h("h2", { text: "Tasks" }), this.count, h("span", { class: "grow" }), this.state, this.filter),
      h("div", { class: "trow head" }, ["task", "state", "attempt", "node", "duration"].map((c) => h("span", { text: c }))),
      this.scroller);
    this.list = [];
    this.scroller.addEventListener("scroll", () => this.paint());
    this.filter.addEventListener("input", () => this.refresh(this.model));
    this.state.addEventListener("change", () => this.refresh(this.model));
  }

  show(name) {  // list one map's items
    this.filter.value = `${name}[`;
    this.refresh(this.model);
    this.el.scrollIntoView({ block: "nearest" });
  }

  refresh(model) {
    this.model = model;
    const text = this.filter.value.trim().toLowerCase();
    const st = this.state.value;
    const out = [];
    for (const t of model.tasks.values()) {
      if (st && t.status !== st) continue;
      if (text && !t.task_id.toLowerCase().includes(text)) continue;
      out.push(t);
    }
    this.list = out;
    this.count.textContent = `${out.length} of ${model.tasks.size}`;
    this.spacer.style.height = `${out.length * ROW}px`;
    this.scroller.style.height = `${Math.min(VIEW, Math.max(1, out.length) * ROW + 2)}px`;
    this.paint();
  }

  paint() {
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / ROW) - 5);
    const last = Math.min(this.list.length, first + Math.ceil(VIEW / ROW) + 10);
    clear(this.rows);
    this.rows.style.transform = `translateY(${first * ROW}px)`;
    const now = Date.now() / 1000;
    for (let i = first; i < last; i++) {
      const t = this.list[i];
      const dur = t.duration ?? (t.started_at && t.status === "running" ? now - t.started_at : null);
      this.rows.append(h("div", { class: "trow click", "data-task": t.task_id, onclick: () => this.onPick(t.task_id) },
        h("span", { class: "mono", text: t.task_id, title: t.task_id }), h("span", {}, badge(t.status)),
        h("span", { text: t.attempts || "" }), h("span", { text: t.node || "" }), h("span", { text: fmtDur(dur) })));
    }
  }
}
