// Everything that needs a person: concurrent values to choose between (with
// the buttons that resolve them), changes the safety rules turned into
// no-ops, and cross-document rules that do not hold.

import { api } from "./api.js";
import { conflictCard } from "./conflict.js";
import { badge, h } from "./dom.js";
import { fieldLabel, short, statusClass, statusLabel, typeLabel, valueText } from "./format.js";

/** Render the conflicts page (fetches `GET /v1/conflicts`). */
export async function renderConflicts(ctx) {
  const data = await api("/v1/conflicts");
  const views = data?.entities || [];
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
      : withConflicts.map((v) => entityBlock(ctx, v)),
    others.length
      ? h("div", {},
        h("h2", { class: "section-title" }, "Other issues"),
        others.map((v) => entityBlock(ctx, v)))
      : null);
}

function entityBlock(ctx, v) {
  const f = v.fields || {};
  const permitId = v.type === "permit" ? v.id : f.permit_id;
  const name = v.type === "permit" ? (f.title || "(untitled permit)") : (f.description || short(v.id));
  return h("section", { class: "panel entity-block", "data-testid": "conflict-entity", "data-id": v.id },
    h("div", { class: "entity-head" },
      h("div", {},
        h("span", { class: "hint" }, typeLabel(v.type)),
        h("h2", {}, permitId ? h("a", { href: `#/permit/${permitId}` }, name) : name)),
      f.status ? badge(statusLabel(f.status), statusClass(f.status)) : null),
    (v.conflicts || []).map((c) => conflictCard(v.id, c, { onResolved: () => ctx.rerender() })),
    (v.violations || []).length
      ? h("div", { class: "alert danger" },
        h("strong", {}, "Safety rules not met"),
        h("ul", {}, v.violations.map((x) => h("li", {}, x.detail || x.rule))))
      : null,
    (v.rejected || []).length
      ? h("div", { class: "alert muted" },
        h("strong", {}, "Changes not applied"),
        h("ul", {}, v.rejected.map((r) => h("li", {},
          `${fieldLabel(r.field)} → ${valueText(r.value)}: ${r.detail || r.reason} (change ${short(r.change)})`))))
      : null);
}
