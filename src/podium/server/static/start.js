// Start a registered workflow: a form generated from its typed parameters.
import { get, post } from "./api.js";
import { h, clear } from "./dom.js";

function field(p) {
  const id = `p-${p.name}`;
  const hint = `${p.type}${p.required ? ", required" : ""}${p.description ? " — " + p.description : ""}`;
  let input;
  if (p.type === "bool") {
    input = h("input", { id, type: "checkbox", "data-param": p.name, "data-type": p.type });
    input.checked = p.default === true;
  } else if (p.type === "int" || p.type === "float") {
    input = h("input", { id, type: "number", step: p.type === "int" ? "1" : "any", "data-param": p.name, "data-type": p.type,
      value: p.default ?? "", required: p.required });
  } else if (p.type === "str") {
    input = h("input", { id, type: "text", "data-param": p.name, "data-type": p.type, value: p.default ?? "", required: p.required });
  } else {
    input = h("textarea", { id, rows: 3, "data-param": p.name, "data-type": p.type, placeholder: "JSON" });
    input.value = p.default === null || p.default === undefined ? "" : JSON.stringify(p.default);
  }
  return h("div", { class: "field" }, h("label", { for: id }, h("b", { text: p.name }), h("span", { class: "muted", text: ` (${hint})` })), input);
}

function read(form) {
  const params = {};
  for (const el of form.querySelectorAll("[data-param]")) {
    const name = el.dataset.param, type = el.dataset.type;
    if (type === "bool") { params[name] = el.checked; continue; }
    const v = el.value;
    if (v === "") continue;  // left empty: the default applies (a required one is reported)
    if (type === "int" || type === "float") params[name] = Number(v);
    else if (type === "str") params[name] = v;
    else {
      try { params[name] = JSON.parse(v); } catch (e) { throw new Error(`param ${name}: not valid JSON`); }
    }
  }
  return params;
}

export function startPage(main, chosen) {
  const box = h("section", { class: "panel narrow" }, h("h1", { text: "Start a run" }));
  main.append(box);
  let stopped = false;
  get("/api/workflows").then((wfs) => {
    if (stopped) return;
    if (!wfs.length) { box.append(h("p", { class: "muted", text: "No workflow is registered: add [[server.workflows]] to podium.toml." })); return; }
    const select = h("select", { id: "start-workflow" }, wfs.map((w) => h("option", { value: w.name, text: w.name })));
    const formBox = h("div");
    box.append(h("div", { class: "field" }, h("label", { for: "start-workflow", text: "Workflow" }), select), formBox);
    const show = () => {
      const w = wfs.find((x) => x.name === select.value);
      clear(formBox);
      const err = h("p", { class: "error", id: "start-error" });
      const form = h("form", { id: "start-form" },
        w.description ? h("p", { class: "muted", text: w.description }) : null,
        h("p", { class: "muted", text: `${w.tasks} task${w.tasks === 1 ? "" : "s"}, from ${w.path}` }),
        w.params.map(field),
        h("button", { type: "submit", class: "primary", id: "start-submit", text: "Start" }), err);
      form.onsubmit = async (ev) => {
        ev.preventDefault();
        err.textContent = "";
        const button = form.querySelector("button");
        button.disabled = true;
        try {
          const run = await post("/api/runs", { workflow: w.name, params: read(form) });
          location.hash = `#/runs/${encodeURIComponent(run.run_id)}`;
        } catch (e) {
          err.textContent = e.message;
          button.disabled = false;
        }
      };
      formBox.append(form);
    };
    select.onchange = show;
    if (chosen && wfs.some((w) => w.name === chosen)) select.value = chosen;
    show();
  }).catch((e) => box.append(h("p", { class: "error", text: e.message })));
  return { stop() { stopped = true; } };
}
