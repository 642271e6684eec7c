// Everything that needs a person: concurrent values to choose between (with
// the buttons that resolve them), changes the safety rules turned into
// no-ops, and cross-document rules that do not hold.

import { api } from "./api.js";
import { writersOf } from "./authors.js";
import { conflictCard } from "./conflict.js";
import { badge, h } from "./dom.js";
import { fieldLabel, short, statusClass, statusLabel, typeLabel, valueText } from "./format.js";
import { fetchHistory } from "./history.js";

/**
 * Render the conflicts page (fetches `GET /v1/conflicts`, the history of
 * each entity with conflicts for who wrote what, and the alarms for how
 * broken rules are said).
 */
export async function renderConflicts(ctx) {
  const data = await api("/v1/conflicts");
  const views = data?.entities || [];
  await ctx.alarms.current().catch(() => null);
  const histories = new Map(await Promise.all(views
    .filter((v) => (v.conflicts || []).length > 0)
    .map(async (v) => [v.id, await fetchHistory(v.id).catch(() => null)])));
  const block = (v) => entityBlock(ctx, v, histories.get(v.id));
  const withConflicts = views.filter((v) => (v.conflicts || []).length > 0);
  const others = views.filter((v) => (v.conflicts || []).length === 0);

  return h("div", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "Conflicts")),
    withConflicts.length === 0
      ? h("div", { class: "panel all-clear", "data-testid": "no-conflicts" },
        h("span", { class: "big-tick", "aria-hidden": "true" }, "✓"),
        h("div", {},
          h("h2", {}, "No conflicts"),
          h("p", {}, "Every device's edits have merged without disagreement.")))
      : withConflicts.map(block),
    others.length
      ? h("div", {},
        h("h2", { class: "section-title" }, "Other issues"),
        others.map(block))
      : null);
}

function entityBlock(ctx, v, history) {
  const canWrite = ctx.canWrite();
  // a permit in alarm: the alarm's words (isolation points by description)
  const alarms = ctx.alarms.of(v.id);
  const rules = alarms.length ? alarms.map((a) => a.detail) : (v.violations || []).map((x) => x.detail || x.rule);
  const f = v.fields || {};
  const permitId = v.type === "permit" ? v.id : f.permit_id;
  const name = v.type === "permit" ? (f.title || "(untitled permit)") : (f.description || short(v.id));
  return h("section", { class: "panel entity-block", "data-testid": "conflict-entity", "data-id": v.id },
    h("div", { class: "entity-head" },
      h("div", {},
        h("span", { class: "hint" }, typeLabel(v.type)),
        h("h2", {}, permitId ? h("a", { href: `#/permit/${permitId}` }, name) : name)),
      f.status ? badge(statusLabel(f.status), statusClass(f.status)) : null),
    (v.conflicts || []).map((c) => conflictCard(v.id, c, {
      onResolved: () => ctx.rerender(),
      writers: history ? writersOf(history, c.field) : null,
      canWrite,
    })),
    rules.length
      ? h("div", { class: "alert danger" },
        h("strong", {}, "ALARM: safety rules not met"),
        h("ul", {}, rules.map((text) => h("li", {}, text))))
      : null,
    (v.rejected || []).length
      ? h("div", { class: "alert muted" },
        h("strong", {}, "Changes not applied"),
        h("ul", {}, v.rejected.map((r) => h("li", {},
          `${fieldLabel(r.field)} → ${valueText(r.value)}: ${r.detail || r.reason} (change ${short(r.change)})`))))
      : null);
}
