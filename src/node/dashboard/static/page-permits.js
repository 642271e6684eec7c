// The overview: every permit, grouped by status (active work first), with
// what needs attention on each card.

import { badge, empty, h } from "./dom.js";
import {
  FOLDED_STATUSES, PERMIT_STATUSES, short, statusClass, statusLabel,
} from "./format.js";

/** Render the overview from the entity index `ctx.entities`. */
export function renderPermits(ctx) {
  const { entities, state } = ctx;
  const query = (state.filter || "").trim().toLowerCase();
  const permits = entities.permits().filter((p) =>
    !query || (p.title || "").toLowerCase().includes(query) || p.id.startsWith(query));

  const groups = new Map(PERMIT_STATUSES.map((s) => [s, []]));
  for (const p of permits) {
    const key = groups.has(p.status) ? p.status : "unknown";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(p);
  }

  const search = h("input", {
    type: "search", id: "filter", "data-keep": "filter", placeholder: "Find a permit by title",
    "aria-label": "Find a permit by title", value: state.filter || "",
    oninput: (e) => {
      state.filter = e.target.value;
      ctx.rerender();
    },
  });

  const summary = PERMIT_STATUSES
    .filter((s) => groups.get(s).length > 0)
    .map((s) => h("a", { class: `tally ${statusClass(s)}`, href: `#/permits` , "data-status": s,
      onclick: (e) => {
        e.preventDefault();
        document.getElementById(`group-${s}`)?.scrollIntoView({ behavior: "smooth" });
      } },
    h("strong", {}, String(groups.get(s).length)), " ", statusLabel(s)));

  const sections = [...groups.entries()]
    .filter(([, list]) => list.length > 0)
    .map(([status, list]) => group(status, list, entities, !FOLDED_STATUSES.has(status)));

  return h("div", { class: "page" },
    h("div", { class: "page-head" },
      h("h1", {}, "Permits"),
      search),
    summary.length ? h("div", { class: "tallies" }, summary) : null,
    sections.length ? sections : empty(query
      ? "No permit matches that title."
      : "No permits yet. Permits created on any device show up here as soon as they sync."));
}

function group(status, permits, entities, open) {
  permits.sort((a, b) => (b.feed_seq || 0) - (a.feed_seq || 0));
  return h("details", { class: "group", id: `group-${status}`, open, "data-testid": `group-${status}` },
    h("summary", {},
      badge(statusLabel(status), statusClass(status)),
      h("span", { class: "group-count" }, `${permits.length} permit${permits.length === 1 ? "" : "s"}`)),
    h("div", { class: "cards" }, permits.map((p) => card(p, entities))));
}

function card(p, entities) {
  const children = entities.childrenOf(p.id);
  const points = children.filter((c) => c.type === "isolation_point");
  const verified = points.filter((c) => c.status === "verified").length;
  const closeouts = children.filter((c) => c.type === "closeout");
  const closed = closeouts.some((c) => c.completed);
  const flags = [];
  if (p.conflicts > 0) {
    flags.push(badge(`${p.conflicts} conflict${p.conflicts === 1 ? "" : "s"}`, "warn"));
  }
  if (p.rejected > 0) flags.push(badge(`${p.rejected} rejected`, "muted"));
  return h("a", { class: "card", href: `#/permit/${p.id}`, "data-testid": "permit-card", "data-id": p.id },
    h("div", { class: "card-top" },
      h("span", { class: "card-title" }, p.title || "(untitled permit)"),
      badge(statusLabel(p.status), statusClass(p.status))),
    h("div", { class: "card-meta" },
      points.length
        ? h("span", {}, `Isolation ${verified}/${points.length} verified`)
        : h("span", { class: "muted" }, "No isolation points"),
      closeouts.length ? h("span", {}, closed ? "Closeout complete" : "Closeout open") : null,
      h("span", { class: "muted mono" }, short(p.id))),
    flags.length ? h("div", { class: "card-flags" }, flags) : null);
}
