// Pure helpers for the canary page: the form's values to a CanarySpec (or the fields that
// are wrong), and the samples the live chart plots. No DOM, no fetch.

export const ACTIVE_PHASES = new Set(["", "Progressing", "Paused"]);
const DURATION = /^\d+(\.\d+)?(ms|s|m|h)$/;

/** "5, 25,50 100" -> [5, 25, 50, 100]; null when a part is not a whole number. */
export function parseSteps(text) {
  const parts = String(text).split(/[\s,]+/).filter(Boolean);
  if (!parts.length || parts.some((p) => !/^\d+$/.test(p))) return null;
  return parts.map(Number);
}

/**
 * Form values (strings) -> {spec, errors}; `errors` maps the API's field names
 * (spec.steps, spec.thresholds.maxP99, ...) to a message; the API checks the rest.
 */
export function specFromForm(v) {
  const errors = {};
  const spec = {
    service: v.service,
    baseline: { version: v.baseline.trim() },
    canary: { version: v.canary.trim() },
    interval: v.interval.trim(),
    thresholds: {},
  };
  if (!v.service) errors["spec.service"] = "pick the service";
  if (!spec.baseline.version) errors["spec.baseline"] = "the baseline's version label, e.g. v1";
  if (!spec.canary.version) errors["spec.canary"] = "the canary's version label, e.g. v2";
  const steps = parseSteps(v.steps);
  if (steps === null) errors["spec.steps"] = "whole percentages separated by commas, e.g. 5, 25, 50, 100";
  else spec.steps = steps;
  if (!DURATION.test(spec.interval)) errors["spec.interval"] = "a duration such as 500ms, 30s or 2m";
  const maxErrorRate = Number(v.maxErrorRate);
  if (v.maxErrorRate === "" || !Number.isFinite(maxErrorRate)) errors["spec.thresholds.maxErrorRate"] = "a percentage, e.g. 1";
  else spec.thresholds.maxErrorRate = maxErrorRate;
  if (v.maxP99.trim()) {
    if (!DURATION.test(v.maxP99.trim())) errors["spec.thresholds.maxP99"] = "a duration such as 250ms, or empty";
    else spec.thresholds.maxP99 = v.maxP99.trim();
  }
  const minRequests = Number(v.minRequests);
  if (!Number.isInteger(minRequests) || minRequests < 1) errors["spec.thresholds.minRequests"] = "a whole number, at least 1";
  else spec.thresholds.minRequests = minRequests;
  if (v.route && v.route.trim()) spec.route = v.route.trim();
  return { spec, errors };
}

/** Keeps the status's `measured` readings as they arrive (one per distinct `at`). */
export class CanarySamples {
  constructor(limit = 600) {
    this.limit = limit;
    this.byCanary = new Map(); // "ns/name" -> [{t, canary, baseline}]
  }

  note(key, status) {
    const measured = status && status.measured;
    if (!measured || !measured.at) return;
    const t = Date.parse(measured.at);
    if (!Number.isFinite(t)) return;
    const list = this.byCanary.get(key) || [];
    if (list.length && list[list.length - 1].t >= t) return;
    list.push({ t, canary: measured.canary, baseline: measured.baseline });
    if (list.length > this.limit) list.splice(0, list.length - this.limit);
    this.byCanary.set(key, list);
  }

  get(key) {
    return this.byCanary.get(key) || [];
  }
}

/** Chart points [tMs, value] of one subset's field, from history entries and samples. */
export function seriesOf(status, samples, subset, field) {
  const points = new Map();
  for (const entry of (status && status.history) || []) {
    const t = Date.parse(entry.time);
    if (Number.isFinite(t) && entry[subset]) points.set(t, entry[subset][field]);
  }
  for (const s of samples) if (s[subset]) points.set(s.t, s[subset][field]);
  return [...points.entries()].sort((a, b) => a[0] - b[0]);
}
