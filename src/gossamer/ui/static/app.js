// The dashboard shell: login, hash routing, the live connection (list, then follow the
// watch stream; poll the proxy listing and the golden metrics), and redrawing the current
// page when the mesh changes.
import {
  ApiError, KINDS, followWatch, listAudit, listIdentities, listKind, listProxies, loadSession, logout, metricsEdges,
  metricsServices, session, setUnauthorizedHandler,
} from "./api.js";
import { h } from "./dom.js";
import { loginForm } from "./login.js";
import { MetricsHistory, backfillPoints, backfillWindows } from "./metrics.js";
import { MeshModel } from "./model.js";
import * as canary from "./page-canary.js";
import * as config from "./page-config.js";
import * as events from "./page-events.js";
import * as overview from "./page-overview.js";
import * as proxies from "./page-proxies.js";
import * as service from "./page-service.js";
import * as topology from "./page-topology.js";
import * as traffic from "./page-traffic.js";

const PAGES = { overview, service, traffic, canary, proxies, config, events, topology };
const NAV = ["overview", "topology", "traffic", "canary", "proxies", "config", "events"];
const PROXY_POLL_MS = 2000;
const METRICS_POLL_MS = 2000;
const METRICS_WINDOW = "30s";
const MAX_BACKOFF_MS = 10_000;

const model = new MeshModel();
const metrics = new MetricsHistory();
const ctx = { model, metrics };
const main = document.getElementById("main");
const liveStatus = document.getElementById("live-status");
let mounted = null; // {name, params, update} of a page that keeps its own state

let started = false; // the live loops run once logged in
let loggedOut = false;
let generation = 0; // live loops of an earlier login stop when this moves on
let liveAbort = null; // cancels the open watch stream on logout
const current = (gen) => gen === generation && !loggedOut;

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const name = PAGES[parts[0]] ? parts[0] : "overview";
  return { name, params: parts.slice(1).filter(Boolean) };
}

let navDrawn = null; // the nav is rebuilt only when it changes: a focused link must stay

function drawNav(current) {
  const shown = `${current}|${session.name}|${session.role}`;
  if (shown === navDrawn) return;
  navDrawn = shown;
  const nav = document.getElementById("nav");
  nav.replaceChildren(
    ...NAV.map((name) =>
      h("li", {}, h("a", { href: `#/${name}`, "aria-current": name === current ? "page" : null }, PAGES[name].title)),
    ),
  );
  const who = document.getElementById("who");
  who.replaceChildren();
  if (session.auth && session.name) {
    who.append(`${session.name} (${session.role}) `,
      h("button.link.light", { type: "button", id: "logout", on: { click: doLogout } }, "Log out"));
  }
}

async function doLogout() {
  try {
    await logout();
  } finally {
    showLogin("You are logged out.");
  }
}

// Nothing but the form while logged out: the mesh's data stays behind the session.
function showLogin(reason = "") {
  loggedOut = true;
  mounted = null;
  navDrawn = null;
  if (liveAbort) liveAbort.abort();
  document.getElementById("nav").replaceChildren();
  document.getElementById("who").replaceChildren();
  setLive("Not logged in", "warn");
  const form = loginForm(() => {
    loggedOut = false;
    start(true);
  }, reason);
  main.replaceChildren(form.node);
  document.title = "Log in · gossamer";
  form.focus();
}

// Live redraws must not throw the keyboard user's focus away: refocus the same control.
function focusKey(el) {
  if (!el || !main.contains(el)) return null;
  return el.id ? `#${CSS.escape(el.id)}` : el.getAttribute("href") ? `[href="${CSS.escape(el.getAttribute("href"))}"]` : null;
}

// full: a new page (drawn from scratch); moveFocus: after navigation, focus its heading.
function draw(full, moveFocus = false) {
  if (loggedOut || !started) return;
  const { name, params } = route();
  const page = PAGES[name];
  if (!full && mounted && mounted.name === name && mounted.params.join("/") === params.join("/")) {
    mounted.update(model);
    return;
  }
  const key = full ? null : focusKey(document.activeElement);
  mounted = null;
  let node = null;
  if (page.mount) {
    const m = page.mount(ctx, params);
    if (m) {
      mounted = { name, params, update: m.update };
      node = m.node;
    }
  }
  if (!node) node = page.render(ctx, params);
  main.replaceChildren(node);
  document.title = `${page.title} · gossamer`;
  drawNav(name);
  if (key) {
    const again = main.querySelector(key);
    if (again) again.focus();
  } else if (moveFocus) {
    const heading = main.querySelector("h1");
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
  }
}

let redrawQueued = false;
function changed() {
  // Many events in one burst: one redraw per animation frame.
  if (redrawQueued) return;
  redrawQueued = true;
  requestAnimationFrame(() => {
    redrawQueued = false;
    draw(false);
  });
}

function setLive(text, tone) {
  liveStatus.textContent = text;
  liveStatus.className = `live ${tone}`;
}

async function listEverything() {
  const listings = await Promise.all(KINDS.map((k) => listKind(k.kind)));
  listings.forEach((listing, i) => model.loadListing(KINDS[i].kind, listing.items || []));
  const revisions = listings.map((l) => l.revision || 0);
  model.revision = Math.max(...revisions);
  model.changed();
  return Math.min(...revisions); // replaying from the oldest listing converges
}

async function followMesh(gen) {
  let backoff = 500;
  while (current(gen)) {
    try {
      let from = await listEverything();
      const quietUntil = model.revision; // replayed events are not news
      setLive(`Live · revision ${model.revision}`, "ok");
      await followWatch(
        from,
        (event) => {
          model.applyEvent(event, Date.now(), event.revision > quietUntil);
          from = Math.max(from, event.revision || 0);
          setLive(`Live · revision ${model.revision}`, "ok");
          model.changed();
        },
        liveAbort.signal,
        () => (backoff = 500),
      );
      if (!current(gen)) return;
      setLive("Reconnecting…", "warn");
    } catch (err) {
      if (!current(gen)) return;
      const gone = err instanceof ApiError && err.status === 410;
      setLive(gone ? "History compacted: reloading…" : `Disconnected (${err.message}); retrying…`, "bad");
    }
    await new Promise((resolve) => setTimeout(resolve, backoff));
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
}

async function pollProxies(gen) {
  while (current(gen)) {
    try {
      model.proxies = await listProxies();
      model.changed();
    } catch {
      // the watch loop reports connection trouble; keep the last listing
    }
    if (route().name === "events") {
      try {
        model.audit = (await listAudit()).items || []; // who changed what (the audit log)
        model.changed();
      } catch {
        model.audit = null; // an embedded control plane keeps no log: the page says so
      }
    }
    try {
      const held = await listIdentities(); // the SVIDs the CA signed, per proxy
      model.identities = new Map((held.items || []).map((i) => [i.proxy, i]));
    } catch {
      // no CA on an embedded control plane (404): the page says "—"
    }
    await new Promise((resolve) => setTimeout(resolve, PROXY_POLL_MS));
  }
}

// Once per login: rebuild the last two minutes so charts do not start empty.
async function backfillMetrics() {
  try {
    const windows = backfillWindows();
    const now = Date.now();
    const bodies = await Promise.all(windows.map((w) => metricsServices(`${w}s`)));
    metrics.backfill(backfillPoints(new Map(windows.map((w, i) => [w, bodies[i]])), now));
    model.changed();
  } catch {
    // the live poll reports trouble; the charts simply start from now
  }
}

async function pollMetrics(gen) {
  backfillMetrics();
  while (current(gen)) {
    try {
      const [services, edges] = await Promise.all([metricsServices(METRICS_WINDOW), metricsEdges(METRICS_WINDOW)]);
      metrics.record(Date.now(), services, edges);
      model.changed();
    } catch (err) {
      metrics.error = err.message; // pages say the numbers are old; the loop goes on
    }
    await new Promise((resolve) => setTimeout(resolve, METRICS_POLL_MS));
  }
}

// After a login the focus moves to the page's heading; a plain page load leaves it alone.
function start(afterLogin = false) {
  started = true;
  generation += 1;
  liveAbort = new AbortController();
  draw(true, afterLogin);
  followMesh(generation);
  pollProxies(generation);
  pollMetrics(generation);
}

async function boot() {
  try {
    await loadSession();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) showLogin();
    else setLive(`Cannot reach the control plane (${err.message})`, "bad");
    return;
  }
  start();
}

setUnauthorizedHandler(() => {
  if (!loggedOut) showLogin("Your session has ended; log in again.");
});
model.subscribe(changed);
window.addEventListener("hashchange", () => draw(true, true));
boot();
