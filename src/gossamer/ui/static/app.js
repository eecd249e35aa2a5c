// The dashboard shell: hash routing, the live connection (list, then follow the watch
// stream; poll the proxy listing), and redrawing the current page when the mesh changes.
import { ApiError, KINDS, followWatch, listKind, listProxies } from "./api.js";
import { h } from "./dom.js";
import { MeshModel } from "./model.js";
import * as config from "./page-config.js";
import * as events from "./page-events.js";
import * as overview from "./page-overview.js";
import * as proxies from "./page-proxies.js";
import * as service from "./page-service.js";
import * as topology from "./page-topology.js";
import * as traffic from "./page-traffic.js";

const PAGES = { overview, service, traffic, proxies, config, events, topology };
const NAV = ["overview", "topology", "traffic", "proxies", "config", "events"];
const PROXY_POLL_MS = 2000;
const MAX_BACKOFF_MS = 10_000;

const model = new MeshModel();
const ctx = { model };
const main = document.getElementById("main");
const liveStatus = document.getElementById("live-status");
let mounted = null; // {name, params, update} of a page that keeps its own state

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const name = PAGES[parts[0]] ? parts[0] : "overview";
  return { name, params: parts.slice(1).filter(Boolean) };
}

function drawNav(current) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(
    ...NAV.map((name) =>
      h("li", {}, h("a", { href: `#/${name}`, "aria-current": name === current ? "page" : null }, PAGES[name].title)),
    ),
  );
}

// Live redraws must not throw the keyboard user's focus away: refocus the same control.
function focusKey(el) {
  if (!el || !main.contains(el)) return null;
  return el.id ? `#${CSS.escape(el.id)}` : el.getAttribute("href") ? `[href="${CSS.escape(el.getAttribute("href"))}"]` : null;
}

// full: a new page (drawn from scratch); moveFocus: after navigation, focus its heading.
function draw(full, moveFocus = false) {
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

async function followMesh() {
  let backoff = 500;
  for (;;) {
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
        undefined,
        () => (backoff = 500),
      );
      setLive("Reconnecting…", "warn");
    } catch (err) {
      const gone = err instanceof ApiError && err.status === 410;
      setLive(gone ? "History compacted: reloading…" : `Disconnected (${err.message}); retrying…`, "bad");
    }
    await new Promise((resolve) => setTimeout(resolve, backoff));
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
}

async function pollProxies() {
  for (;;) {
    try {
      model.proxies = await listProxies();
      model.changed();
    } catch {
      // the watch loop reports connection trouble; keep the last listing
    }
    await new Promise((resolve) => setTimeout(resolve, PROXY_POLL_MS));
  }
}

model.subscribe(changed);
window.addEventListener("hashchange", () => draw(true, true));
draw(true);
followMesh();
pollProxies();
