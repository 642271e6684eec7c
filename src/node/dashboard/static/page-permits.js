// The overview: permits in alarm in a red band at the top, then one page of
// the tenant's permits as the node lists them (`GET /v1/entities` with `q`,
// `status`, `alarm`, `limit`, `cursor`): searched over title, location, work
// type and description, filtered by status and "in alarm", active work first.

import { api } from "./api.js";
import { badge, empty, h } from "./dom.js";
import { FOLDED_STATUSES, PERMIT_STATUSES, short, statusClass, statusLabel } from "./format.js";

/** Permits per page. */
export const PAGE_SIZE = 50;
/** How long typing pauses before the search is sent. */
const SEARCH_DELAY_MS = 300;

/**
 * The overview's state in `ctx.state.overview`: the search text, the status
 * chip, the alarm chip, and the cursors of the pages before this one.
 */
function overviewState(ctx) {
  ctx.state.overview ||= { q: "", status: "", alarm: false, cursors: [""] };
  return ctx.state.overview;
}

/** The listing's URL for the current search, filters and page. */
function listingUrl(st) {
  const params = new URLSearchParams({
    type: "permit", limit: String(PAGE_SIZE), cursor: st.cursors[st.cursors.length - 1],
  });
  if (st.q.trim()) params.set("q", st.q.trim());
  if (st.status) params.set("status", st.status);
  if (st.alarm) params.set("alarm", "true");
  return `/v1/entities?${params}`;
}

/** Render the overview (fetches one page of the listing and the alarms). */
export async function renderPermits(ctx) {
  const st = overviewState(ctx);
  const [page, alarms] = await Promise.all([
    api(listingUrl(st)),
    ctx.alarms.current().catch(() => null),
  ]);
  const restart = () => {
    st.cursors = [""];
    ctx.rerender();
  };

  let typing = null;
  const search = h("input", {
    type: "search", id: "filter", "data-keep": "filter",
    placeholder: "Search title, location, work type, description",
    "aria-label": "Search permits by title, location, work type or description",
    value: st.q,
    oninput: (e) => {
      st.q = e.target.value;
      clearTimeout(typing);
      typing = setTimeout(restart, SEARCH_DELAY_MS);
    },
  });

  const groups = new Map();
  for (const p of page.entities) {
    if (!groups.has(p.status)) groups.set(p.status, []);
    groups.get(p.status).push(p);
  }
  const sections = [...groups.entries()].map(([status, list]) =>
    group(status, list, ctx.entities, !FOLDED_STATUSES.has(status)));

  const filtered = st.q.trim() || st.status || st.alarm;
  return h("div", { class: "page" },
    alarmBand(alarms),
    h("div", { class: "page-head" },
      h("h1", {}, "Permits"),
      h("div", { class: "head-tools" },
        search,
        ctx.canWrite()
          ? h("a", { class: "button primary", href: "#/new", "data-testid": "new-permit", "data-write": "" },
            "New permit")
          : null)),
    chips(st, page.counts, restart),
    sections.length
      ? [pageInfo(st, page), sections, pager(st, page, ctx)]
      : empty(filtered
        ? "No permit matches this search and these filters."
        : "No permits yet. Permits created on any device show up here as soon as they sync."));
}

/** The red band of permits in alarm (or a quiet "no alarms" line). */
function alarmBand(alarms) {
  if (!alarms) {
    return h("p", { class: "alert muted" }, "Alarms could not be read from the node.");
  }
  if (alarms.permits.length === 0) {
    return h("p", { class: "no-alarms", "data-testid": "no-alarms" }, "No alarms: every active permit meets its safety rules.");
  }
  const n = alarms.permits.length;
  return h("section", { class: "alarm-band", role: "alert", "data-testid": "alarm-band" },
    h("h2", {}, h("span", { class: "alarm-icon", "aria-hidden": "true" }, "!"),
      `${n} permit${n === 1 ? "" : "s"} in alarm`),
    h("ul", {}, alarms.permits.map((p) =>
      h("li", { "data-testid": "alarm-permit", "data-id": p.id },
        h("div", { class: "alarm-permit" },
          h("a", { href: `#/permit/${p.id}` }, p.title || "(untitled permit)"),
          badge(statusLabel(p.status), statusClass(p.status)),
          p.location ? h("span", { class: "hint" }, p.location) : null),
        h("ul", { class: "alarm-rules" }, p.alarms.map((a) =>
          h("li", { "data-testid": "alarm", "data-rule": a.rule }, a.detail)))))));
}

/** Filter chips: all, each status with permits, and "in alarm". */
function chips(st, counts, restart) {
  const statuses = counts?.statuses || {};
  const all = Object.values(statuses).reduce((a, b) => a + b, 0);
  const chip = (label, n, pressed, onclick, cls = "", testid = "") =>
    h("button", {
      type: "button", class: `chip ${cls}`.trim(), "aria-pressed": pressed ? "true" : "false",
      "data-testid": testid || null, onclick,
    }, label, " ", h("span", { class: "chip-count" }, String(n)));
  return h("div", { class: "chips-row", role: "group", "aria-label": "Filter permits" },
    chip("All", all, !st.status && !st.alarm, () => {
      st.status = "";
      st.alarm = false;
      restart();
    }, "", "chip-all"),
    PERMIT_STATUSES.filter((s) => statuses[s] > 0 || st.status === s).map((s) =>
      chip(statusLabel(s), statuses[s] || 0, st.status === s, () => {
        st.status = st.status === s ? "" : s;
        restart();
      }, statusClass(s), `chip-${s}`)),
    chip("In alarm", counts?.alarm || 0, st.alarm, () => {
      st.alarm = !st.alarm;
      restart();
    }, "chip-alarm", "chip-alarm"));
}

/** "Permits 51–100 of 254". */
function pageInfo(st, page) {
  const first = (st.cursors.length - 1) * PAGE_SIZE + 1;
  const last = first + page.entities.length - 1;
  return h("p", { class: "page-info", "data-testid": "page-info", "data-total": String(page.total) },
    `Permits ${first}–${last} of ${page.total}`);
}

/** Previous / next page. */
function pager(st, page, ctx) {
  const n = st.cursors.length;
  const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
  const go = (cursors) => {
    st.cursors = cursors;
    ctx.rerender();
    window.scrollTo(0, 0);
  };
  return h("nav", { class: "pager", "aria-label": "Pages" },
    h("button", {
      type: "button", class: "secondary", "data-testid": "page-prev", disabled: n === 1,
      onclick: () => go(st.cursors.slice(0, -1)),
    }, "← Previous"),
    h("span", { class: "page-number" }, `Page ${n} of ${pages}`),
    h("button", {
      type: "button", class: "secondary", "data-testid": "page-next", disabled: !page.has_more,
      onclick: () => go([...st.cursors, page.next_cursor]),
    }, "Next →"));
}

function group(status, permits, entities, open) {
  return h("details", { class: "group", id: `group-${status}`, open, "data-testid": `group-${status}` },
    h("summary", {},
      badge(statusLabel(status), statusClass(status)),
      h("span", { class: "group-count" }, `${permits.length} on this page`)),
    h("div", { class: "cards" }, permits.map((p) => card(p, entities))));
}

function card(p, entities) {
  const children = entities.childrenOf(p.id);
  const points = children.filter((c) => c.type === "isolation_point");
  const verified = points.filter((c) => c.status === "verified").length;
  const closeouts = children.filter((c) => c.type === "closeout");
  const closed = closeouts.some((c) => c.completed);
  const alarms = p.alarms || [];
  const flags = [];
  if (alarms.length) flags.push(badge(`${alarms.length} alarm${alarms.length === 1 ? "" : "s"}`, "danger"));
  if (p.conflicts > 0) {
    flags.push(badge(`${p.conflicts} conflict${p.conflicts === 1 ? "" : "s"}`, "warn"));
  }
  if (p.rejected > 0) flags.push(badge(`${p.rejected} rejected`, "muted"));
  return h("a", {
    class: `card${alarms.length ? " in-alarm" : ""}`, href: `#/permit/${p.id}`,
    "data-testid": "permit-card", "data-id": p.id, "data-alarms": String(alarms.length),
  },
  h("div", { class: "card-top" },
    h("span", { class: "card-title" }, p.title || "(untitled permit)"),
    badge(statusLabel(p.status), statusClass(p.status))),
  (p.location || p.work_type)
    ? h("div", { class: "card-where" }, [p.location, p.work_type].filter(Boolean).join(" · "))
    : null,
  h("div", { class: "card-meta" },
    points.length
      ? h("span", {}, `Isolation ${verified}/${points.length} verified`)
      : h("span", { class: "muted" }, "No isolation points"),
    closeouts.length ? h("span", {}, closed ? "Closeout complete" : "Closeout open") : null,
    h("span", { class: "muted mono" }, short(p.id))),
  flags.length ? h("div", { class: "card-flags" }, flags) : null);
}
