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

  /** Put reconstructed older points (see backfillPoints) before what was polled live. */
  backfill(pointsByService) {
    for (const [key, older] of pointsByService) {
      const live = this.points.get(key) || [];
      const first = live.length ? live[0].t : Infinity;
      this.points.set(key, [...older.filter((p) => p.t < first), ...live]);
    }
  }

  of(service) {
    return this.services.get(service) || null;
  }

  history(service) {
    return this.points.get(service) || [];
  }
}

export const SLOT_S = 10; // the control plane's telemetry slots
export const BACKFILL_POINTS = 12; // two minutes of history when a page opens
/** The windows (seconds) backfillPoints needs answers for. */
export const backfillWindows = (count = BACKFILL_POINTS) =>
  Array.from({ length: count + 4 }, (_, i) => (i + 1) * SLOT_S);

/**
 * The API answers windows ending now; a window of W seconds covers the slots from now - W
 * to now, so differences of two windows are exact older slots. From the answers for
 * backfillWindows() this rebuilds, per service, the 30 s readings the live poll would have
 * made 20 s, 30 s, ... ago (rps and success rate; percentiles cannot be rebuilt).
 */
export function backfillPoints(bodiesBySeconds, nowMs, count = BACKFILL_POINTS, windowS = 30) {
  const totals = (seconds) => {
    const out = new Map();
    for (const item of (bodiesBySeconds.get(seconds) || {}).items || []) {
      const failures = Math.round(item.requests * (1 - (item.successRate ?? 1)));
      out.set(item.service, { requests: item.requests, failures });
    }
    return out;
  };
  const slots = windowS / SLOT_S; // a live reading spans this many slots plus the current one
  const result = new Map();
  for (let j = count + 1; j >= 2; j--) {
    const wide = totals((j + slots) * SLOT_S);
    const narrow = totals((j - 1) * SLOT_S);
    for (const [service, w] of wide) {
      const n = narrow.get(service) || { requests: 0, failures: 0 };
      const requests = w.requests - n.requests;
      const failures = w.failures - n.failures;
      if (!result.has(service)) result.set(service, []);
      result.get(service).push({
        t: nowMs - j * SLOT_S * 1000,
        rps: requests / windowS,
        successRate: requests > 0 ? 1 - failures / requests : null,
        p50: null,
        p99: null,
      });
    }
  }
  return result;
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
