// One permit: its fields, what a supervisor can do to it (workflow buttons,
// gas tests, isolation steps, checklist ticks; none for a read-only token),
// broken safety rules, conflicts (with who wrote each version, resolvable
// here), gas readings (out-of-range ones flagged), isolation points and the
// closeout (added with the forms of `children-form.js`), photos and history;
// and the printed permit (`print-sheet.js`).

import { api, photoUrl } from "./api.js";
import { actionsPanel, isolationButton } from "./actions.js";
import { whoText, writersOf } from "./authors.js";
import { closeoutForm, completeButton, isolationForm } from "./children-form.js";
import { conflictCard } from "./conflict.js";
import { badge, empty, h, panel, toast } from "./dom.js";
import {
  bytes, dateTime, fieldLabel, num, short, statusClass, statusLabel, typeLabel, valueText,
} from "./format.js";
import { gasForm } from "./gas-form.js";
import { fetchHistory, historyList } from "./history.js";
import { printSheet } from "./print-sheet.js";

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
  const [children, entries, alarms] = await Promise.all([
    Promise.all(ctx.entities.childrenOf(id).map((s) =>
      api(`/v1/entities/${encodeURIComponent(s.id)}`).catch(() => null))),
    fetchHistory(id).catch((e) => e),
    ctx.alarms.current().then(() => ctx.alarms.of(id)).catch(() => []),
  ]);
  const kids = children.filter((v) => v && !v.fields?.deleted);
  const history = entries instanceof Error ? null : entries;
  const f = view.fields || {};
  const canWrite = ctx.canWrite() && !f.deleted;
  const done = () => ctx.rerender();

  return h("div", { class: "page", "data-testid": "permit", "data-id": id },
    h("div", { class: "permit-nav screen-only" },
      h("a", { class: "back", href: "#/permits" }, "← All permits"),
      h("button", { type: "button", class: "secondary", "data-testid": "print", onclick: () => window.print() },
        "Print permit")),
    h("div", { class: "permit-head" },
      h("div", {},
        h("h1", { "data-testid": "permit-title" }, f.title || "(untitled permit)"),
        h("p", { class: "subtitle" },
          [f.location, f.work_type].filter(Boolean).join(" · ") || "No location given")),
      h("span", { class: `badge big ${statusClass(f.status)}`, "data-testid": "permit-status" },
        statusLabel(f.status))),
    f.deleted ? h("p", { class: "alert danger" }, "This permit was deleted.") : null,
    violations(view, kids),
    canWrite && view.type === "permit" ? actionsPanel(ctx, view, { onDone: done }) : null,
    conflicts(ctx, view, history, canWrite),
    rejected(view),
    h("div", { class: "columns" },
      h("div", {},
        panel("Work", {},
          dl([
            ["Description", f.description || "—"],
            ["Created", [`${dateTime(f.created_at)} by `, created(view)]],
            ...authorshipRows(view),
            ["Permit id", h("span", { class: "mono" }, view.id)],
          ])),
        panel("Safety checklist", {}, checklist(f.safety_checklist, canWrite ? id : null, done)),
        panel("PPE required", {}, ppe(f.ppe_requirements))),
      h("div", {},
        panel("Gas readings", { "data-testid": "gas-panel" },
          gasReadings(f.gas_readings),
          canWrite && view.type === "permit" ? gasForm(id, { onDone: done }) : null),
        panel("Isolation points", { "data-testid": "isolation-panel" },
          isolationPoints(kids, canWrite, done),
          canWrite && view.type === "permit" && open(f.status) ? isolationForm(id, { onDone: done }) : null),
        panel("Closeout", { "data-testid": "closeout-panel" },
          closeouts(kids, canWrite, done),
          canWrite && view.type === "permit" && closeable(f.status) && !kids.some((k) => k.type === "closeout")
            ? closeoutForm(id, { onDone: done }) : null))),
    panel("Photos", {}, photos(f.photos)),
    panel("History", { "data-testid": "history-panel" },
      entries instanceof Error ? empty(`History unavailable: ${entries.message}`) : historyList(history)),
    view.type === "permit" ? printSheet(view, kids, history, alarms) : null);
}

/** Who created the entity: its verified creator, else the `created_by` written. */
function created(view) {
  const c = view.authorship?.created_by;
  return h("span", { "data-testid": "authorship-created" },
    c ? whoText(c) : `${view.fields?.created_by || "unknown"}, unverified`);
}

/** The workflow moves the view names an author for. */
const AUTHORSHIP_ROWS = [
  ["submitted_by", "Submitted", "authorship-submitted"],
  ["approved_by", "Approved", "authorship-approved"],
  ["activated_by", "Issued", "authorship-activated"],
];

/** "Approved: by J. Smith on tablet-3, signed · 12 Mar, 14:02", for each move made. */
function authorshipRows(view) {
  const a = view.authorship || {};
  return AUTHORSHIP_ROWS.filter(([key]) => a[key]).map(([key, label, testid]) => [
    label,
    h("span", { "data-testid": testid, "data-verification": a[key].verification },
      `by ${whoText(a[key])} · ${dateTime((a[key].time || 0) * 1000)}`),
  ]);
}

/** Whether isolation points may still be added (the permit's life has not ended). */
function open(status) {
  return status !== "closed" && status !== "cancelled";
}

/** Whether the closeout may be started: once work has begun, before the permit closes. */
function closeable(status) {
  return status === "active" || status === "suspended" || status === "completed";
}

function dl(rows) {
  return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/**
 * A violation's words with isolation points named by their description
 * instead of their id (the view says `isolation point <uuid>`).
 */
export function violationText(v, kids) {
  let text = v.detail || v.rule;
  for (const k of kids) {
    const name = k.fields?.description;
    if (k.type === "isolation_point" && name && text.includes(k.id)) {
      text = text.split(k.id).join(JSON.stringify(name));
    }
  }
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function violations(view, kids) {
  const list = view.violations || [];
  if (list.length === 0) return null;
  return h("div", { class: "alert danger alarm-panel", role: "alert", "data-testid": "violations" },
    h("strong", {}, "ALARM: safety rules not met"),
    h("ul", {}, list.map((v) => h("li", { "data-rule": v.rule }, violationText(v, kids)))));
}

function conflicts(ctx, view, history, canWrite) {
  const list = view.conflicts || [];
  if (list.length === 0) return null;
  return h("div", { class: "alert warn", "data-testid": "conflicts" },
    h("strong", {}, canWrite ? "Devices disagree: choose what to keep" : "Devices disagree"),
    list.map((c) => conflictCard(view.id, c, {
      onResolved: () => ctx.rerender(),
      writers: history ? writersOf(history, c.field) : null,
      canWrite,
    })));
}

function rejected(view) {
  const list = view.rejected || [];
  if (list.length === 0) return null;
  return h("details", { class: "alert muted" },
    h("summary", {}, `${list.length} change${list.length === 1 ? " was" : "s were"} not applied (they broke a safety rule)`),
    h("ul", {}, list.map((r) => h("li", {},
      `${fieldLabel(r.field)} → ${valueText(r.value)}: ${r.detail || r.reason} (change ${short(r.change)})`))));
}

/**
 * A checklist, n of m checked. With `entityId` (a writer), an unticked item
 * is a button that ticks it on that entity (the permit's safety checklist or
 * the closeout's checklist: `PATCH {checklist}` means the entity's own).
 */
function checklist(items, entityId, onDone) {
  const entries = Object.entries(items || {});
  if (entries.length === 0) return empty("No checklist items.");
  const done = entries.filter(([, v]) => v === true).length;
  const tick = async (item, button) => {
    button.disabled = true;
    try {
      await api(`/v1/entities/${encodeURIComponent(entityId)}`, {
        method: "PATCH", body: { checklist: { [item]: true } },
      });
      toast(`Checked: ${item}`);
      onDone?.();
    } catch (e) {
      toast(`Not checked: ${e.message}`, "error");
      button.disabled = false;
    }
  };
  return h("div", {},
    h("p", { class: done === entries.length ? "ok-text" : "warn-text" },
      `${done} of ${entries.length} checked`),
    h("ul", { class: "checklist" }, entries.map(([item, ticked]) => {
      const box = entityId && !ticked
        ? h("button", {
          type: "button", class: "tick tick-button", "data-testid": "tick", "data-item": item,
          "data-write": "", "aria-label": `Check: ${item}`,
          onclick: (e) => tick(item, e.currentTarget),
        }, "")
        : h("span", { class: "tick", "aria-hidden": "true" }, ticked ? "✓" : "");
      return h("li", { class: ticked ? "done" : "open" },
        box,
        h("span", {}, item),
        h("span", { class: "sr-only" }, ticked ? " (checked)" : " (not checked)"));
    })));
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

function isolationPoints(kids, canWrite, onDone) {
  const points = kids.filter((v) => v.type === "isolation_point");
  if (points.length === 0) return empty("No isolation points.");
  return h("ul", { class: "items" }, points.map((v) => {
    const f = v.fields || {};
    const locks = Array.isArray(f.lock_ids) ? f.lock_ids : Object.keys(f.lock_ids || {});
    const status = h("p", { class: "error", role: "alert", hidden: true });
    return h("li", { "data-testid": "isolation-point", "data-id": v.id, "data-status": f.status || "" },
      h("div", { class: "item-top" },
        h("span", {}, f.description || `${typeLabel(v.type)} ${short(v.id)}`),
        badge(statusLabel(f.status), statusClass(f.status))),
      h("div", { class: "item-row" },
        h("span", { class: "hint" }, locks.length ? `Locks: ${locks.join(", ")}` : "No locks applied"),
        canWrite ? isolationButton(v, { onDone, status }) : null),
      status,
      (v.conflicts || []).map((c) => conflictCard(v.id, c, { canWrite, onResolved: onDone })));
  }));
}

/**
 * The permit's closeout: its checks (tickable by a writer until it is
 * completed) and, once every check is ticked, the button that completes it.
 */
function closeouts(kids, canWrite, onDone) {
  const list = kids.filter((v) => v.type === "closeout");
  if (list.length === 0) return empty("No closeout started.");
  return h("div", {}, list.map((v) => {
    const f = v.fields || {};
    const writable = canWrite && !f.completed;
    const status = h("p", { class: "error", role: "alert", hidden: true });
    return h("div", { class: "closeout", "data-testid": "closeout", "data-id": v.id,
      "data-completed": f.completed ? "true" : "false" },
    h("div", { class: "item-top" },
      h("span", {}, "Closeout"),
      f.completed ? badge("Completed", "status-verified") : badge("Open", "status-submitted")),
    checklist(f.checklist, writable ? v.id : null, onDone),
    f.notes ? h("p", { class: "notes" }, f.notes) : null,
    writable ? completeButton(v, { onDone, status }) : null,
    status);
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
