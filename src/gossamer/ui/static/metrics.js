// Golden metrics as the pages need them: the latest numbers per service and per edge,
// a short history per service for the charts (kept in the browser: the API answers
// windows, the page remembers what it saw), and pure judgements of health. No DOM, no fetch.

export const HISTORY_MS = 10 * 60_000; // the charts show up to the last ten minutes
export const LOW_SUCCESS = 0.99; // below: "degraded"
export const BAD_SUCCESS = 0.95; // below: "failing"

export class MetricsHistory {
  constructor() {
    this.services = new Map(); // "ns/name" -> latest item of /metrics/services
    this.edges = []; // items of /metrics/edges
    this.points = new Map(); // "ns/name" -> [{t, rps, successRate, p50, p99}]
    this.updatedAt = null;
    this.error = null;
  }

  /** Fold one poll's answers in: the latest numbers, and one point per service. */
  record(nowMs, servicesBody, edgesBody) {
    this.services = new Map(((servicesBody && servicesBody.items) || []).map((i) => [i.service, i]));
    this.edges = (edgesBody && edgesBody.items) || [];
    for (const [key, item] of this.services) {
      if (!this.points.has(key)) this.points.set(key, []);
      this.points.get(key).push({ t: nowMs, rps: item.rps, successRate: item.successRate, p50: item.p50, p99: item.p99 });
    }
    for (const [key, points] of this.points) {
      const keep = points.findIndex((p) => p.t >= nowMs - HISTORY_MS);
      if (keep > 0) points.splice(0, keep);
      else if (keep < 0) this.points.delete(key);
    }
    this.updatedAt = nowMs;
    this.error = null;
  }

  of(service) {
    return this.services.get(service) || null;
  }

  history(service) {
    return this.points.get(service) || [];
  }
}

/** "ok" | "degraded" | "failing" | "idle" for a success rate (null: no requests). */
export function healthTone(successRate, requests) {
  if (!requests || successRate == null) return "idle";
  if (successRate < BAD_SUCCESS) return "failing";
  if (successRate < LOW_SUCCESS) return "degraded";
  return "ok";
}

/** Share of the requests to `service` that arrived over mTLS, from the edges into it. */
export function mtlsCoverage(edges, service) {
  let total = 0;
  let protectedRequests = 0;
  for (const e of edges) {
    if (e.dst !== service || !e.requests) continue;
    total += e.requests;
    if (e.mtls) protectedRequests += e.requests;
  }
  return total ? protectedRequests / total : null;
}

export const formatRate = (rps) => (rps == null ? "—" : rps >= 100 ? rps.toFixed(0) : rps >= 10 ? rps.toFixed(1) : rps.toFixed(2));
export const formatPercent = (share) => (share == null ? "—" : `${(Math.floor(share * 1000) / 10).toFixed(1)}%`);
export function formatSeconds(s) {
  if (s == null) return "—";
  if (s < 1) return `${(s * 1000).toFixed(s < 0.01 ? 2 : 0)} ms`;
  return `${s.toFixed(2)} s`;
}
