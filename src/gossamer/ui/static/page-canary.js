// Canaries: the list, a form to start one (reviewed, then confirmed), and a live view of a
// run: phase, step, weights, canary vs baseline against the thresholds, promote or abort
// (each confirmed). Status arrives on the watch stream: the control plane writes it.
import { ApiError, canaryCommand, startCanary } from "./api.js";
import { ACTIVE_PHASES, CanarySamples, seriesOf, specFromForm } from "./canary.js";
import { lineChart } from "./chart.js";
import { badge, h, link, table } from "./dom.js";
import { formatPercent, formatSeconds } from "./metrics.js";
import { mayChange, readOnlyNote } from "./readonly.js";

export const title = "Canaries";

const samples = new CanarySamples();
const PHASE_TONE = { Progressing: "warn", Paused: "muted", Promoted: "ok", Aborted: "bad" };
const phaseBadge = (phase) => badge(phase || "starting", PHASE_TONE[phase] || "muted");
const hrefOf = (ns, name) => `#/canary/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;

export function render() {
  return null; // both views keep state across live updates: see mount
}

export function mount(ctx, [namespace, name]) {
  return namespace && name ? detail(ctx, namespace, name) : overview(ctx);
}

function noteAll(model) {
  for (const c of model.list("Canary")) samples.note(`${c.metadata.namespace}/${c.metadata.name}`, c.status);
}

function listTable(model) {
  const rows = model.list("Canary").map((c) => {
    const ns = c.metadata.namespace || "default";
    const st = c.status || {};
    const w = st.weights || {};
    return h("tr", { dataset: { canary: `${ns}/${c.metadata.name}` } },
      h("th", { scope: "row" }, link(hrefOf(ns, c.metadata.name), `${ns}/${c.metadata.name}`)),
      h("td", {}, c.spec.service),
      h("td", {}, phaseBadge(st.phase)),
      h("td.num", {}, st.step == null || st.step < 0 ? "—" : `${st.step + 1}/${(c.spec.steps || []).length}`),
      h("td", {}, `baseline ${w.baseline ?? "—"} / canary ${w.canary ?? "—"}`),
      h("td.wrap", {}, st.message || ""));
  });
  return table("Canaries", ["Canary", "Service", "Phase", "Step", "Weights", "Last decision"], rows, { id: "canaries-table" });
}

function field(id, label, input, help) {
  return h("div.field", {}, h("label.block", { for: id }, label), input,
    help ? h("span.note", { id: `${id}-help` }, help) : null,
    h("p.error.field-error", { id: `${id}-error`, role: "alert" }));
}

function overview(ctx) {
  const root = h("section", { id: "canary-page" });
  const tableBox = h("div.scroll");
  const services = () => ctx.model.list("Service").map((s) => `${s.metadata.namespace}/${s.metadata.name}`);
  const inputs = {
    name: h("input", { id: "canary-name", required: true, placeholder: "reviews-v2" }),
    service: h("select", { id: "canary-service", required: true }),
    baseline: h("input", { id: "canary-baseline", value: "v1", "aria-describedby": "canary-baseline-help" }),
    canary: h("input", { id: "canary-canary", value: "v2", "aria-describedby": "canary-canary-help" }),
    steps: h("input", { id: "canary-steps", value: "5, 25, 50, 100", "aria-describedby": "canary-steps-help" }),
    interval: h("input", { id: "canary-interval", value: "30s", "aria-describedby": "canary-interval-help" }),
    maxErrorRate: h("input", { id: "canary-maxErrorRate", type: "number", min: 0, max: 100, step: "any", value: "1" }),
    maxP99: h("input", { id: "canary-maxP99", value: "250ms", "aria-describedby": "canary-maxP99-help" }),
    minRequests: h("input", { id: "canary-minRequests", type: "number", min: 1, step: 1, value: "100" }),
  };
  const fieldIds = {
    "spec.service": "canary-service", "spec.baseline": "canary-baseline", "spec.canary": "canary-canary",
    "spec.steps": "canary-steps", "spec.interval": "canary-interval", "spec.thresholds.maxErrorRate": "canary-maxErrorRate",
    "spec.thresholds.maxP99": "canary-maxP99", "spec.thresholds.minRequests": "canary-minRequests", "metadata.name": "canary-name",
  };
  const review = h("div.review", { id: "canary-review", "aria-live": "polite" });
  const outcome = h("div", { id: "canary-outcome", role: "alert" });

  function fillServices() {
    const chosen = inputs.service.value;
    const names = services();
    inputs.service.replaceChildren(h("option", { value: "" }, "— pick a service —"),
      ...names.map((n) => h("option", { value: n, selected: n === chosen }, n)));
  }

  function showErrors(errors) {
    for (const [f, id] of Object.entries(fieldIds)) {
      const el = document.getElementById(id) || root.querySelector(`#${id}`);
      const box = root.querySelector(`#${id}-error`);
      const message = Object.entries(errors).find(([k]) => k === f || k.startsWith(`${f}.`) || k.startsWith(`${f}[`));
      if (box) box.textContent = message ? message[1] : "";
      if (el) el.setAttribute("aria-invalid", message ? "true" : "false");
    }
  }

  function values() {
    return Object.fromEntries(Object.entries(inputs).map(([k, el]) => [k, el.value]));
  }

  function onReview(event) {
    event.preventDefault();
    outcome.replaceChildren();
    review.replaceChildren();
    const v = values();
    const { spec, errors } = specFromForm({ ...v, service: v.service.split("/")[1] || "" });
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(v.name)) errors["metadata.name"] = "a DNS label: lowercase letters, digits and -";
    showErrors(errors);
    if (Object.keys(errors).length) {
      root.querySelector("[aria-invalid=true]")?.focus();
      return;
    }
    const namespace = v.service.split("/")[0];
    const t = spec.thresholds;
    review.append(h("h3", {}, "Start this canary?"),
      h("ul", {},
        h("li", {}, `${namespace}/${v.name} on service ${spec.service}: baseline version=${spec.baseline.version}, canary version=${spec.canary.version}`),
        h("li", {}, `steps ${spec.steps.join("% → ")}% to the canary, ${spec.interval} each`),
        h("li", {}, `roll back above ${t.maxErrorRate}% errors${t.maxP99 ? ` or p99 above ${t.maxP99}` : ""}, judged after ${t.minRequests} requests per step`)),
      h("button.primary", { type: "button", id: "canary-confirm", on: { click: () => submit(namespace, v.name, spec) } }, "Confirm and start"),
      " ", h("button", { type: "button", on: { click: () => review.replaceChildren() } }, "Cancel"));
    review.querySelector("#canary-confirm").focus();
  }

  async function submit(namespace, name, spec) {
    try {
      await startCanary(namespace, name, spec);
      location.hash = hrefOf(namespace, name);
    } catch (err) {
      const errors = {};
      if (err instanceof ApiError) for (const e of err.body.errors || []) if (e.field) errors[e.field] = e.message;
      showErrors(errors);
      review.replaceChildren();
      outcome.replaceChildren(h("p.error", {}, `Not started: ${err.message}`));
    }
  }

  const form = h("form.card.canary-form", { id: "canary-form", noValidate: true, "aria-labelledby": "canary-form-title",
    on: { submit: onReview } },
    h("h2", { id: "canary-form-title" }, "Start a canary"),
    h("div.fields",
      {},
      field("canary-name", "Name", inputs.name),
      field("canary-service", "Service", inputs.service),
      field("canary-baseline", "Baseline version", inputs.baseline, "label version= of the current release"),
      field("canary-canary", "Canary version", inputs.canary, "label version= of the new release"),
      field("canary-steps", "Steps (% to the canary)", inputs.steps, "increasing, 1–100"),
      field("canary-interval", "Interval per step", inputs.interval, "e.g. 30s"),
      field("canary-maxErrorRate", "Max error rate (%)", inputs.maxErrorRate),
      field("canary-maxP99", "Max p99 latency", inputs.maxP99, "empty: latency not checked"),
      field("canary-minRequests", "Min requests per step", inputs.minRequests)),
    h("button.primary", { type: "submit", id: "canary-review-button" }, "Review"),
    review, outcome);
  if (!mayChange()) {
    form.insertBefore(readOnlyNote("starting a canary"), form.children[1]);
    for (const el of form.querySelectorAll("input, select, button")) {
      el.disabled = true;
      el.setAttribute("aria-describedby", `${el.getAttribute("aria-describedby") || ""} readonly-note`.trim());
    }
  }

  function update(model) {
    noteAll(model);
    tableBox.replaceChildren(listTable(model));
    if (inputs.service.options.length !== services().length + 1) fillServices();
  }

  root.append(h("h1", {}, "Canaries"),
    h("p.summary", {}, "Shift a service's traffic step by step to a new version, checked against thresholds at every step."),
    tableBox, form);
  fillServices();
  update(ctx.model);
  return { node: root, update };
}

function detail(ctx, namespace, name) {
  const key = `${namespace}/${name}`;
  const root = h("section", { id: "canary-detail" });
  const statusBox = h("div", { id: "canary-status", "aria-live": "polite" });
  const chartsBox = h("div.charts");
  const historyBox = h("div.scroll");
  const actions = h("div.buttons", { id: "canary-actions" });
  const outcome = h("div", { id: "canary-outcome", role: "alert" });
  let pending = null; // the command awaiting confirmation
  let drawn = null; // what the buttons show now: live updates must not take the focus away

  function drawActions(doc) {
    const phase = (doc && doc.status && doc.status.phase) || "";
    const shown = `${doc ? "doc" : "none"}|${phase}|${pending}`;
    if (shown === drawn) return;
    drawn = shown;
    actions.replaceChildren();
    if (!doc || !ACTIVE_PHASES.has(phase)) return;
    if (!mayChange()) {
      actions.append(readOnlyNote("promoting, aborting or pausing it"));
      return;
    }
    if (pending) {
      actions.append(h("span", {}, `${pending[0].toUpperCase()}${pending.slice(1)} ${key}? `),
        h("button.primary", { type: "button", id: "canary-confirm-command", on: { click: () => run(pending) } }, `Confirm ${pending}`),
        " ", h("button", { type: "button", on: { click: () => { pending = null; drawActions(doc); actions.querySelector("button")?.focus(); } } }, "Cancel"));
      return;
    }
    const commands = ["promote", "abort", phase === "Paused" ? "resume" : "pause"];
    for (const command of commands) {
      actions.append(h("button", { type: "button", id: `canary-${command}`,
        on: { click: () => { pending = command; drawActions(doc); actions.querySelector("#canary-confirm-command").focus(); } } },
      `${command[0].toUpperCase()}${command.slice(1)}…`), " ");
    }
  }

  async function run(command) {
    pending = null;
    outcome.replaceChildren();
    try {
      await canaryCommand(namespace, name, command);
      outcome.append(h("p.ok", {}, `${command} sent.`));
    } catch (err) {
      outcome.append(h("p.error", {}, `Not done: ${err.message}`));
    }
    update(ctx.model);
  }

  function update(model) {
    noteAll(model);
    const doc = model.get("Canary", namespace, name);
    statusBox.replaceChildren();
    chartsBox.replaceChildren();
    historyBox.replaceChildren();
    if (!doc) {
      statusBox.append(h("p.note", {}, "No such canary (yet)."), link("#/canary", "All canaries"));
      drawActions(null);
      return;
    }
    const st = doc.status || {};
    const steps = st.steps || doc.spec.steps || [];
    const w = st.weights || {};
    const th = (st.measured && st.measured.thresholds) || {};
    statusBox.append(h("dl.facts", {},
      h("dt", {}, "Phase"), h("dd", { id: "canary-phase" }, phaseBadge(st.phase)),
      h("dt", {}, "Step"), h("dd", { id: "canary-step" }, st.step == null || st.step < 0 ? "—" : `${st.step + 1} of ${steps.length} (${steps[st.step]}% to the canary)`),
      h("dt", {}, "Weights"), h("dd", { id: "canary-weights" }, `baseline ${w.baseline ?? "—"} · canary ${w.canary ?? "—"}`),
      h("dt", {}, "Decision"), h("dd", { id: "canary-message" }, st.message || "—")));
    const mine = samples.get(key);
    // From just before the run's first decision (at least the last 20 s) to now.
    const times = [...mine.map((s) => s.t), ...(st.history || []).map((e) => Date.parse(e.time))].filter(Number.isFinite);
    const now = Date.now();
    const span = [Math.min(now - 20_000, ...times.map((t) => t - 2000)), now];
    const both = (f) => [
      { name: "canary", tone: "b", points: seriesOf(st, mine, "canary", f) },
      { name: "baseline", tone: "a", points: seriesOf(st, mine, "baseline", f) },
    ];
    chartsBox.append(
      lineChart({ id: "canary-chart-errors", title: "Error rate", series: both("errorRate"), span, format: formatPercent,
        thresholds: th.maxErrorRate == null ? [] : [{ value: th.maxErrorRate, label: `max ${formatPercent(th.maxErrorRate)}` }] }),
      lineChart({ id: "canary-chart-p99", title: "p99 latency", series: both("p99"), span, format: formatSeconds,
        thresholds: th.maxP99 == null ? [] : [{ value: th.maxP99, label: `max ${formatSeconds(th.maxP99)}` }] }));
    const rows = [...(st.history || [])].reverse().map((e) => h("tr", {},
      h("td", {}, new Date(e.time).toLocaleTimeString()), h("td", {}, e.action), h("td.num", {}, String(e.step + 1)),
      h("td", {}, `${e.weights?.baseline ?? "—"}/${e.weights?.canary ?? "—"}`), h("td", {}, numbers(e.canary)),
      h("td", {}, numbers(e.baseline)), h("td.wrap", {}, e.reason || "")));
    historyBox.append(table("Decisions", ["Time", "Action", "Step", "Weights b/c", "Canary", "Baseline", "Reason"], rows, { id: "canary-history" }));
    drawActions(doc);
  }

  root.append(h("h1", {}, `Canary ${key}`), link("#/canary", "All canaries"), statusBox, actions, outcome,
    h("h2", {}, "Canary vs baseline"), chartsBox, historyBox);
  update(ctx.model);
  return { node: root, update };
}

/** "120 req, 0.8% errors, p99 12 ms" */
export function numbers(stats) {
  if (!stats) return "—";
  return `${stats.requests} req, ${formatPercent(stats.errorRate)} errors, p99 ${formatSeconds(stats.p99)}`;
}
