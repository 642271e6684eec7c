// The dashboard: routes (#/permits, #/permit/ID, #/new, #/conflicts,
// #/devices), the token prompt on 401, the token's rights (a read-only token
// sees no write buttons), the alarm count, and live updates that re-render
// what is shown.

import { Alarms } from "./alarms.js";
import { api, checkToken } from "./api.js";
import { getToken, promptForToken, setToken } from "./auth.js";
import { h, toast } from "./dom.js";
import { Entities } from "./entities.js";
import { connectLive } from "./live.js";
import { renderConflicts } from "./page-conflicts.js";
import { renderDevices } from "./page-devices.js";
import { renderNewPermit } from "./page-new.js";
import { renderPermit } from "./page-permit.js";
import { renderPermits } from "./page-permits.js";

/** Live events are gathered for this long before the page re-renders. */
const RERENDER_DELAY_MS = 250;
/** The devices page refreshes this often (pending counts, "5 min ago"). */
const DEVICES_REFRESH_MS = 10000;

const PAGES = ["permits", "permit", "new", "conflicts", "devices"];

const main = document.getElementById("main");
const entities = new Entities();
const alarms = new Alarms();
const state = {};
/**
 * The token's rights, from `/v1/status` (`{tenant, device, read_only, roles,
 * person, transitions}`).
 */
let access = null;
let live = null;
let rendering = null;
let again = false;
let timer = null;
let alarmTimer = null;

const ctx = {
  entities,
  alarms,
  state,
  rerender: () => schedule(0),
  /** Whether this token may write (no write buttons otherwise). */
  canWrite: () => !!access && !access.read_only,
  /** The token's roles, as the node says them (none known: `[]`). */
  roles: () => access?.roles || [],
  /**
   * The moves from `from` this token's roles allow, of those the workflow
   * offers: the node's `access.transitions`; a node that does not say them
   * (before roles) allows a writer every move.
   */
  allowedMoves: (from, moves) => {
    if (!access || access.read_only) return [];
    const allowed = access.transitions?.[from];
    return Array.isArray(allowed) ? moves.filter((to) => allowed.includes(to)) : moves;
  },
};

/** The current route: `{page, id}`. */
function route() {
  const [, page = "permits", id] = location.hash.replace(/^#/, "").split("/");
  return { page: PAGES.includes(page) ? page : "permits", id };
}

/** Build the current page. */
async function build() {
  const { page, id } = route();
  switch (page) {
    case "permit": return renderPermit(ctx, decodeURIComponent(id || ""));
    case "new": return renderNewPermit(ctx);
    case "conflicts": return renderConflicts(ctx);
    case "devices": return renderDevices(ctx);
    default: return renderPermits(ctx);
  }
}

/**
 * Render the current page into `main`. The new page is built off-screen and
 * swapped in whole; what the operator was typing (inputs marked `data-keep`)
 * and where the focus was survive the swap.
 */
async function render({ navigated = false } = {}) {
  // a form being filled in is not rebuilt by live updates
  if (!navigated && route().page === "new" && main.querySelector('[data-testid="new-permit-page"]')) {
    return undefined;
  }
  if (rendering) {
    again = true;
    return rendering;
  }
  let refused = false;
  rendering = (async () => {
    do {
      again = false;
      markNav();
      try {
        const page = await build();
        swap(page);
      } catch (e) {
        if (e.status === 401) {
          refused = true;
          break;
        } else {
          swap(h("div", { class: "panel error-panel", role: "alert" },
            h("h1", {}, e.status === 404 ? "Not found" : "Something went wrong"),
            h("p", {}, e.message),
            h("p", {}, h("a", { href: "#/permits" }, "Back to all permits"))));
        }
      }
    } while (again);
    rendering = null;
    if (refused) signIn("Your token was not accepted. Enter a valid access token.");
  })();
  return rendering;
}

function swap(page) {
  const kept = new Map();
  for (const el of main.querySelectorAll("[data-keep]")) {
    kept.set(el.dataset.keep, {
      value: el.value,
      focused: el === document.activeElement,
      start: el.selectionStart,
      end: el.selectionEnd,
    });
  }
  for (const el of page.querySelectorAll("[data-keep]")) {
    const k = kept.get(el.dataset.keep);
    if (k && k.value) el.value = k.value;
  }
  // keep the folded / unfolded state of status groups
  const folded = new Map([...main.querySelectorAll("details[id]")].map((d) => [d.id, d.open]));
  for (const d of page.querySelectorAll("details[id]")) {
    if (folded.has(d.id)) d.open = folded.get(d.id);
  }
  main.replaceChildren(page);
  for (const el of main.querySelectorAll("[data-keep]")) {
    const k = kept.get(el.dataset.keep);
    if (k?.focused) {
      el.focus();
      try {
        el.setSelectionRange(k.start, k.end);
      } catch {
        // not a text input
      }
    }
  }
  updateCount();
}

/** Re-render soon (events come in bursts while a device syncs). */
function schedule(delay = RERENDER_DELAY_MS) {
  clearTimeout(timer);
  timer = setTimeout(render, delay);
}

function markNav() {
  const { page } = route();
  const current = page === "permit" || page === "new" ? "permits" : page;
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function updateCount() {
  const el = document.getElementById("conflict-count");
  const n = entities.needingAttention();
  el.textContent = String(n);
  el.hidden = n === 0;
  const red = document.getElementById("alarm-count");
  const a = alarms.count();
  red.textContent = String(a);
  red.title = `${a} permit${a === 1 ? "" : "s"} in alarm`;
  red.hidden = a === 0;
}

/** Read the alarms again soon (after live changes), then update the count. */
function refreshAlarms(delay = RERENDER_DELAY_MS) {
  alarms.invalidate();
  clearTimeout(alarmTimer);
  alarmTimer = setTimeout(() => alarms.refresh().catch(() => {}), delay);
}

function setLive(stateName) {
  const el = document.getElementById("live");
  el.dataset.state = stateName;
  el.textContent = { live: "Live", connecting: "Reconnecting…", offline: "Offline" }[stateName] || stateName;
}

/** Show the token prompt until a valid token is entered; then reconnect. */
async function signIn(message) {
  live?.close();
  live = null;
  setLive("offline");
  document.getElementById("sign-out").hidden = true;
  await promptForToken(main, checkToken, message);
  main.replaceChildren(h("p", { class: "loading" }, "Loading…"));
  await start();
}

/** Does this change concern the page on screen? */
function concerns(summary) {
  const { page, id } = route();
  if (page === "permits") return summary.type === "permit" || !!summary.permit_id;
  if (page === "permit") return summary.id === id || summary.permit_id === id;
  return page === "conflicts" || page === "devices";
}

/** Do the alarms concern the page on screen (the band, a permit's alarms)? */
function showsAlarms() {
  const { page } = route();
  return page === "permits" || page === "permit" || page === "conflicts";
}

function openLive() {
  live?.close();
  live = connectLive({
    onState: setLive,
    onReady: async () => {
      // anything that changed while the stream was down
      const fresh = await entities.catchUp().catch(() => 1);
      refreshAlarms(0);
      if (fresh > 0) schedule();
    },
    onChange: (summary) => {
      entities.upsert(summary);
      updateCount();
      refreshAlarms();
      if (concerns(summary)) schedule();
    },
    onDevice: () => {
      if (route().page === "devices") schedule();
    },
    onResync: async () => {
      await entities.reload().catch(() => {});
      refreshAlarms(0);
      schedule();
    },
    onRefused: async () => {
      try {
        await api("/v1/status");
        return true;
      } catch (e) {
        if (e.status === 401) {
          signIn("Your token was not accepted. Enter a valid access token.");
          return false;
        }
        return true;
      }
    },
  });
}

async function start() {
  try {
    const status = await api("/v1/status");
    document.title = `Permits · ${status.peer_id}`;
    // a node without `access` in its status is read as read-only: no buttons
    access = status.access || { read_only: true };
    document.body.dataset.access = access.read_only ? "read-only" : "read-write";
    await entities.catchUp();
  } catch (e) {
    if (e.status === 401) {
      return signIn();
    }
    swap(h("div", { class: "panel error-panel", role: "alert" },
      h("h1", {}, "The node cannot be reached"), h("p", {}, e.message)));
    setTimeout(start, 5000);
    return undefined;
  }
  // an open node (no tokens file) answers without one: nothing to change
  document.getElementById("sign-out").hidden = !getToken();
  openLive();
  await render();
  return undefined;
}

alarms.onUpdate = () => {
  updateCount();
  // the overview's band and a permit's alarms follow the alarms, unless the
  // page being built took these very alarms
  setTimeout(() => {
    if (alarms.shown !== alarms.version && showsAlarms()) schedule();
  }, 0);
};

document.getElementById("sign-out").addEventListener("click", () => {
  setToken("");
  toast("Token forgotten on this tablet");
  signIn("Enter the access token to use on this tablet.");
});
window.addEventListener("hashchange", () => {
  render({ navigated: true });
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
});
setInterval(() => {
  if (route().page === "devices" && !document.hidden) render();
}, DEVICES_REFRESH_MS);

start();
