// One permit: its fields, conflicts (resolvable here), violations, gas
// readings (out-of-range ones flagged), isolation points, closeout, photos and
// history.

import { api, photoUrl } from "./api.js";
import { conflictCard } from "./conflict.js";
import { badge, empty, h, panel } from "./dom.js";
import {
  bytes, dateTime, fieldLabel, num, short, statusClass, statusLabel, typeLabel, valueText,
} from "./format.js";
import { historyList } from "./history.js";

/** Render permit `id` (fetches its view, its children's views and history). */
export async function renderPermit(ctx, id) {
  const view = await api(`/v1/entities/${encodeURIComponent(id)}`);
  if (view.type !== "permit") {
    const parent = view.fields?.permit_id;
    if (parent) {
      location.replace(`#/permit/${parent}`);
      return h("p", { class: "loading" }, "Opening its permit…");
    }
  }
  const children = await Promise.all(
    ctx.entities.childrenOf(id).map((s) =>
      api(`/v1/entities/${encodeURIComponent(s.id)}`).catch(() => null)),
  );
  const kids = children.filter((v) => v && !v.fields?.deleted);
  const f = view.fields || {};
  const history = await historyList(id).catch((e) => empty(`History unavailable: ${e.message}`));

  return h("div", { class: "page", "data-testid": "permit", "data-id": id },
    h("a", { class: "back", href: "#/permits" }, "← All permits"),
    h("div", { class: "permit-head" },
      h("div", {},
        h("h1", { "data-testid": "permit-title" }, f.title || "(untitled permit)"),
        h("p", { class: "subtitle" },
          [f.location, f.work_type].filter(Boolean).join(" · ") || "No location given")),
      h("span", { class: `badge big ${statusClass(f.status)}`, "data-testid": "permit-status" },
        statusLabel(f.status))),
    f.deleted ? h("p", { class: "alert danger" }, "This permit was deleted.") : null,
    violations(view),
    conflicts(ctx, view),
    rejected(view),
    h("div", { class: "columns" },
      h("div", {},
        panel("Work", {},
          dl([
            ["Description", f.description || "—"],
            ["Created", `${dateTime(f.created_at)} by ${f.created_by || "unknown"}`],
            ["Permit id", h("span", { class: "mono" }, view.id)],
          ])),
        panel("Safety checklist", {}, checklist(f.safety_checklist)),
        panel("PPE required", {}, ppe(f.ppe_requirements))),
      h("div", {},
        panel("Gas readings", {}, gasReadings(f.gas_readings)),
        panel("Isolation points", {}, isolationPoints(kids)),
        panel("Closeout", {}, closeouts(kids)))),
    panel("Photos", {}, photos(f.photos)),
    panel("History", { "data-testid": "history-panel" }, history));
}

function dl(rows) {
  return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function violations(view) {
  const list = view.violations || [];
  if (list.length === 0) return null;
  return h("div", { class: "alert danger", role: "alert", "data-testid": "violations" },
    h("strong", {}, "Safety rules not met"),
    h("ul", {}, list.map((v) => h("li", {}, v.detail || v.rule))));
}

function conflicts(ctx, view) {
  const list = view.conflicts || [];
  if (list.length === 0) return null;
  return h("div", { class: "alert warn", "data-testid": "conflicts" },
    h("strong", {}, "Devices disagree: choose what to keep"),
    list.map((c) => conflictCard(view.id, c, { onResolved: () => ctx.rerender() })));
}

function rejected(view) {
  const list = view.rejected || [];
  if (list.length === 0) return null;
  return h("details", { class: "alert muted" },
    h("summary", {}, `${list.length} change${list.length === 1 ? " was" : "s were"} not applied (they broke a safety rule)`),
    h("ul", {}, list.map((r) => h("li", {},
      `${fieldLabel(r.field)} → ${valueText(r.value)}: ${r.detail || r.reason} (change ${short(r.change)})`))));
}

function checklist(items) {
  const entries = Object.entries(items || {});
  if (entries.length === 0) return empty("No checklist items.");
  const done = entries.filter(([, v]) => v === true).length;
  return h("div", {},
    h("p", { class: done === entries.length ? "ok-text" : "warn-text" },
      `${done} of ${entries.length} checked`),
    h("ul", { class: "checklist" }, entries.map(([item, ticked]) =>
      h("li", { class: ticked ? "done" : "open" },
        h("span", { class: "tick", "aria-hidden": "true" }, ticked ? "✓" : ""),
        h("span", {}, item),
        h("span", { class: "sr-only" }, ticked ? " (checked)" : " (not checked)")))));
}

function ppe(list) {
  const items = Array.isArray(list) ? list : Object.keys(list || {});
  if (items.length === 0) return empty("None listed.");
  return h("ul", { class: "chips" }, items.map((p) => h("li", {}, p)));
}

/** Whether a reading is outside its own [min, max]. */
function outOfRange(r) {
  const v = Number(r.value);
  return Number.isFinite(v) && (v < Number(r.min) || v > Number(r.max));
}

function gasReadings(map) {
  const readings = Object.entries(map || {})
    .map(([id, r]) => ({ id, ...r }))
    .sort((a, b) => (b.taken_at || 0) - (a.taken_at || 0) || (a.id < b.id ? 1 : -1));
  if (readings.length === 0) return empty("No gas readings yet.");
  // the latest reading of each gas decides (by taken_at, ties by reading id)
  const latest = new Set();
  const seen = new Set();
  for (const r of readings) {
    if (!seen.has(r.gas)) {
      seen.add(r.gas);
      latest.add(r.id);
    }
  }
  const failing = readings.filter((r) => latest.has(r.id) && outOfRange(r));
  return h("div", {},
    failing.length
      ? h("p", { class: "alert danger" }, `Latest ${failing.map((r) => r.gas).join(", ")} reading out of range`)
      : h("p", { class: "ok-text" }, "Latest readings within limits"),
    h("table", { class: "table gas" },
      h("thead", {}, h("tr", {},
        h("th", {}, "Gas"), h("th", {}, "Reading"), h("th", {}, "Allowed"), h("th", {}, "Taken"))),
      h("tbody", {}, readings.map((r) => {
        const bad = outOfRange(r);
        return h("tr", { class: `${bad ? "bad" : ""} ${latest.has(r.id) ? "" : "older"}`.trim(),
          "data-testid": "gas-reading", "data-out-of-range": bad ? "true" : "false" },
        h("td", {}, h("strong", {}, r.gas || "?")),
        h("td", {}, `${num(r.value)} ${r.unit || ""}`, bad ? badge("Out of range", "danger") : null),
        h("td", {}, `${num(r.min)}–${num(r.max)} ${r.unit || ""}`),
        h("td", {}, dateTime(r.taken_at), r.taken_by ? h("div", { class: "hint" }, r.taken_by) : null));
      }))));
}

function isolationPoints(kids) {
  const points = kids.filter((v) => v.type === "isolation_point");
  if (points.length === 0) return empty("No isolation points.");
  return h("ul", { class: "items" }, points.map((v) => {
    const f = v.fields || {};
    const locks = Array.isArray(f.lock_ids) ? f.lock_ids : Object.keys(f.lock_ids || {});
    return h("li", { "data-testid": "isolation-point" },
      h("div", { class: "item-top" },
        h("span", {}, f.description || `${typeLabel(v.type)} ${short(v.id)}`),
        badge(statusLabel(f.status), statusClass(f.status))),
      h("div", { class: "hint" }, locks.length ? `Locks: ${locks.join(", ")}` : "No locks applied"),
      (v.conflicts || []).map((c) => conflictCard(v.id, c, {})));
  }));
}

function closeouts(kids) {
  const list = kids.filter((v) => v.type === "closeout");
  if (list.length === 0) return empty("No closeout started.");
  return h("div", {}, list.map((v) => {
    const f = v.fields || {};
    return h("div", { class: "closeout", "data-testid": "closeout" },
      h("div", { class: "item-top" },
        h("span", {}, "Closeout"),
        f.completed ? badge("Completed", "status-verified") : badge("Open", "status-submitted")),
      checklist(f.checklist),
      f.notes ? h("p", { class: "notes" }, f.notes) : null);
  }));
}

/** Object URLs of the photos shown, revoked when the photos are drawn again. */
let shownPhotos = [];

function photos(map) {
  for (const url of shownPhotos) URL.revokeObjectURL(url);
  shownPhotos = [];
  const list = Object.entries(map || {})
    .map(([id, p]) => ({ id, ...p }))
    .sort((a, b) => (a.taken_at || 0) - (b.taken_at || 0));
  if (list.length === 0) return empty("No photos.");
  return h("div", { class: "photos" }, list.map((p) => {
    const img = h("img", { alt: p.caption || "Site photo" });
    const frame = h("a", { target: "_blank", rel: "noopener noreferrer", class: "photo" },
      img,
      h("span", { class: "caption" }, p.caption || "Photo",
        h("span", { class: "hint" }, ` ${dateTime(p.taken_at)} · ${bytes(p.size)}`)));
    const missing = () =>
      img.replaceWith(h("span", { class: "photo-missing" }, "Photo not synced to this node yet"));
    // fetched with the bearer header and shown as an object URL: no token in any URL
    photoUrl(`/v1/blobs/${encodeURIComponent(p.sha256 || "")}`)
      .then((url) => {
        if (!url) return missing();
        shownPhotos.push(url);
        img.src = url;
        frame.href = url;
      })
      .catch(missing);
    img.addEventListener("error", missing);
    return frame;
  }));
}
