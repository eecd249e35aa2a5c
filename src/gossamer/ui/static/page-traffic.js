// Traffic shifting: edit the backend weights of an HTTPRoute's rules, review the diff,
// confirm -> PUT with the resourceVersion the edit started from. A 409 says so plainly.
import { ApiError, putResource } from "./api.js";
import { h, link, table } from "./dom.js";
import { mayChange, readOnlyNote } from "./readonly.js";
import { backendLabel, ruleWeights, shares, weightsDiff, weightsProblem, withWeights } from "./weights.js";

export const title = "Traffic shifting";

function routeList(ctx) {
  const rows = ctx.model.list("HTTPRoute").map((r) => {
    const ns = r.metadata.namespace || "default";
    const href = `#/traffic/${encodeURIComponent(ns)}/${encodeURIComponent(r.metadata.name)}`;
    const parents = ((r.spec && r.spec.parentRefs) || []).map((p) => p.name).join(", ");
    return h("tr", {}, h("th", { scope: "row" }, link(href, `${ns}/${r.metadata.name}`)), h("td", {}, parents),
      h("td.num", {}, String(((r.spec && r.spec.rules) || []).length)));
  });
  return h("section", {}, h("h1", {}, "Traffic shifting"),
    h("p.summary", {}, "Pick a route to change the weights of its backends, or let a ",
      link("#/canary", "canary"), " shift them step by step against thresholds."),
    h("div.scroll", {}, table("HTTP routes", ["Route", "Parents", "Rules"], rows, { id: "routes-table" })));
}

export function render(ctx, params) {
  if (params.length < 2) return routeList(ctx);
  return null; // the editor is mounted instead (see mount)
}

/** The weight editor keeps its own state across live updates; returns {node, update}. */
export function mount(ctx, [namespace, name]) {
  if (!namespace || !name) return null;
  let base = ctx.model.get("HTTPRoute", namespace, name); // what the edit started from
  const root = h("section", { id: "traffic-editor" });
  const serverNote = h("p.notice", { role: "status", "aria-live": "polite" });
  const outcome = h("div", { role: "alert", "aria-live": "assertive", id: "traffic-outcome" });
  let weights = [];

  function draw() {
    root.replaceChildren();
    root.append(h("h1", {}, `Traffic shifting: ${namespace}/${name}`), serverNote, outcome);
    if (!base) {
      root.append(h("p.note", {}, "This route does not exist (any more)."), link("#/traffic", "All routes"));
      return;
    }
    weights = (base.spec.rules || []).map((_, i) => ruleWeights(base, i));
    root.append(h("p.summary", {}, `Editing resourceVersion ${base.metadata.resourceVersion}.`),
      readOnlyNote("changing weights"));
    base.spec.rules.forEach((rule, ri) => root.append(ruleEditor(rule, ri)));
  }

  function ruleEditor(rule, ri) {
    const diffBox = h("div.diff", { "aria-live": "polite" });
    const shareCells = [];
    const refresh = () => {
      const s = shares(weights[ri]);
      shareCells.forEach((cell, i) => (cell.textContent = `${s[i]}%`));
      diffBox.replaceChildren();
      const problem = weightsProblem(weights[ri]);
      const diff = weightsDiff(base, ri, weights[ri]);
      if (problem) diffBox.append(h("p.error", {}, problem));
      else if (diff.length) {
        diffBox.append(
          h("h3", {}, "Change"),
          h("ul", {}, diff.map((d) => h("li", {}, `${d.label}: ${d.from} → ${d.to} (${d.fromShare}% → ${d.toShare}%)`))),
          h("button.primary", { type: "button", id: `confirm-rule-${ri}`, on: { click: () => save(ri) } }, "Confirm and apply"),
          " ",
          h("button", { type: "button", on: { click: () => { weights[ri] = ruleWeights(base, ri); draw(); } } }, "Discard"),
        );
      } else diffBox.append(h("p.note", {}, "No change."));
    };
    const backends = rule.backendRefs || [];
    const maxWeight = Math.max(100, ...weights[ri]);
    const rows = backends.map((b, bi) => {
      const label = backendLabel(b);
      const id = `w-${ri}-${bi}`;
      const locked = !mayChange();
      const slider = h("input", { type: "range", min: 0, max: maxWeight, step: 1, value: weights[ri][bi],
        "aria-label": `weight of ${label} (slider)`, disabled: locked, "aria-describedby": locked ? "readonly-note" : null });
      const number = h("input", { type: "number", min: 0, max: 1000000, step: 1, value: weights[ri][bi], id,
        "aria-label": `weight of ${label}`, disabled: locked, "aria-describedby": locked ? "readonly-note" : null });
      const set = (raw, from) => {
        const v = raw === "" ? NaN : Number(raw);
        weights[ri][bi] = v;
        if (from !== slider && Number.isFinite(v)) slider.value = String(v);
        if (from !== number) number.value = String(v);
        refresh();
      };
      slider.addEventListener("input", () => set(slider.value, slider));
      number.addEventListener("input", () => set(number.value, number));
      const share = h("td.num", {}, "");
      shareCells.push(share);
      return h("tr", {}, h("th", { scope: "row" }, h("label", { for: id }, label)), h("td.slider", {}, slider),
        h("td", {}, number), share);
    });
    const node = h("article.card", {}, h("h2", {}, `Rule ${ri}${rule.name ? ` (${rule.name})` : ""}`),
      backends.length
        ? h("div.scroll", {}, table("Backends", ["Backend", "Weight", "Value", "Share"], rows, { class: "weights" }))
        : h("p.note", {}, "No backendRefs."),
      diffBox);
    refresh();
    return node;
  }

  async function save(ri) {
    outcome.replaceChildren();
    const doc = withWeights(base, ri, weights[ri]);
    try {
      const stored = await putResource(doc);
      base = stored;
      draw();
      outcome.append(h("p.ok", {}, `Saved: ${namespace}/${name} is now at resourceVersion ${stored.metadata.resourceVersion}.`));
    } catch (err) {
      const conflict = err instanceof ApiError && err.status === 409;
      outcome.append(
        h(`p.${conflict ? "conflict" : "error"}`, {}, conflict ? "Conflict: " : "Not saved: ", err.message),
        conflict
          ? h("button", { type: "button", on: { click: () => { base = ctx.model.get("HTTPRoute", namespace, name); draw(); } } },
              "Load the latest version (your edit is dropped)")
          : null,
      );
    }
  }

  function update(model) {
    const latest = model.get("HTTPRoute", namespace, name);
    const current = base && base.metadata.resourceVersion;
    const now = latest && latest.metadata.resourceVersion;
    if (!base && latest) {
      base = latest;
      draw();
    } else if (current !== now) {
      serverNote.textContent = latest
        ? `The route changed on the server (now resourceVersion ${now}); saving your edit will be refused.`
        : "The route was deleted on the server.";
    } else serverNote.textContent = "";
  }

  draw();
  return { node: root, update };
}
