// An entity's history (`GET /v1/entities/{id}/history`): who changed what and
// when, newest first, with conflict resolutions called out.

import { api } from "./api.js";
import { badge, empty, h } from "./dom.js";
import { dateTime, fieldLabel, short, typeLabel, valueText } from "./format.js";
import { whoText } from "./authors.js";

/** How many entries show before "Show all". */
const FIRST = 20;

/**
 * The history of entity `id` (oldest first), or `null` when the node does
 * not serve history.
 */
export async function fetchHistory(id) {
  try {
    const data = await api(`/v1/entities/${encodeURIComponent(id)}/history`);
    return data?.entries || [];
  } catch (e) {
    if (e.status === 404 && e.code === "not_found") return null;
    throw e;
  }
}

/** The history panel's content for `entries` (as `fetchHistory` gives them). */
export function historyList(entries) {
  if (entries === null) return empty("This node does not serve history yet.");
  const newest = [...entries].reverse();
  if (newest.length === 0) return empty("No changes recorded.");
  const list = h("ol", { class: "history", "data-testid": "history" });
  const more = newest.length > FIRST
    ? h("button", {
      type: "button", class: "link",
      onclick: () => {
        list.replaceChildren(...newest.map(entry));
        more.remove();
      },
    }, `Show all ${newest.length} changes`)
    : null;
  list.replaceChildren(...newest.slice(0, FIRST).map(entry));
  return h("div", {}, list, more);
}

/**
 * Who made a change: the verified author with how it is known, and the
 * device its note claims when that is not the author.
 */
function authorLine(e) {
  const a = e.author || { verification: "unverified" };
  const claim = e.claimed_device ?? e.device ?? null;
  const known = a.device && a.verification !== "unverified";
  const who = a.device || a.refused
    ? whoText(a)
    : `${claim || `actor ${short(e.actor)}`}, unverified`;
  const claims = claim && (known || a.refused) && claim !== a.device;
  return h("span", { class: "who" },
    h("span", {
      "data-testid": "history-author",
      "data-device": a.device || "",
      "data-verification": a.verification || "unverified",
    }, who),
    claims ? h("span", { class: "claim", "data-testid": "history-claim", "data-device": claim },
      ` · note claims ${claim}`) : null);
}

function entry(e) {
  const ops = describeOps(e.ops || []);
  return h(
    "li",
    { class: e.resolution ? "resolution" : "" },
    h("div", { class: "history-head" },
      h("time", { datetime: new Date((e.time || 0) * 1000).toISOString() }, dateTime((e.time || 0) * 1000)),
      authorLine(e),
      e.resolution ? badge("Conflict resolved", "status-verified") : null,
      e.via && e.via !== "resolve" ? badge(`via ${e.via}`, "muted") : null),
    e.resolution
      ? h("p", {}, `${fieldLabel(e.resolution.field)}: ${resolutionText(e.resolution)}`)
      : null,
    ops.length ? h("ul", { class: "ops" }, ops.slice(0, 8).map((t) => h("li", {}, t))) : null,
    ops.length > 8 ? h("p", { class: "hint" }, `and ${ops.length - 8} more`) : null,
  );
}

function resolutionText(r) {
  const how = {
    keep_mine: "kept a chosen version",
    use_server: "kept the version shown",
    merge: "wrote a merged value",
  }[r.resolution] || r.resolution;
  const replaced = (r.replaced || []).map((v) => `"${valueText(v)}"`);
  return replaced.length ? `${how} (the versions were ${replaced.join(", ")})` : how;
}

const ACTIONS = { set: "set to", delete: "removed", edit_text: "text edited" };

/** Set-like maps (item -> true) and checklists (item -> bool). */
const SETS = new Set(["ppe_requirements", "lock_ids"]);
const CHECKLISTS = new Set(["safety_checklist", "checklist"]);
/** Append-only maps of records (id -> {...}), described one line per record. */
const RECORDS = new Set(["gas_readings", "photos"]);

/** Fields every creation writes, summed up as "Created as ...". */
const CREATION_FIELDS = new Set(["type", "created_at", "created_by", "deleted"]);

/** A change's writes as lines a person reads. */
function describeOps(ops) {
  const lines = [];
  const records = new Map();
  const creation = ops.find((op) => op?.field === "type" && op.action === "set");
  if (creation) lines.push(`Created as ${typeLabel(creation.value).toLowerCase()}`);
  for (const op of ops) {
    if (!op || !op.field) continue;
    // the bookkeeping of a creation is said by its first line
    if (creation && CREATION_FIELDS.has(op.field)) continue;
    const [top, item, ...sub] = op.field.split(".");
    if (RECORDS.has(top) && item) {
      const key = `${top}.${item}`;
      if (!records.has(key)) {
        records.set(key, { top, fields: {}, rejected: null });
        lines.push(key);
      }
      const rec = records.get(key);
      if (sub.length) rec.fields[sub.join(".")] = op.value;
      rec.rejected = rec.rejected || op.rejected;
    } else if (SETS.has(top) && item) {
      lines.push(`${fieldLabel(top)}: ${item} ${op.action === "delete" || op.value === false ? "removed" : "added"}${refusal(op)}`);
    } else if (CHECKLISTS.has(top) && item) {
      lines.push(`${fieldLabel(top)}: ${item} ${op.value === true ? "checked" : "unchecked"}${refusal(op)}`);
    } else {
      lines.push(opText(op));
    }
  }
  return lines.map((l) => (records.has(l) ? recordText(records.get(l)) : l));
}

function recordText({ top, fields: f, rejected }) {
  const refused = rejected ? ` (not applied: ${rejected.replace(/_/g, " ")})` : "";
  if (top === "gas_readings") {
    return `Gas reading: ${f.gas ?? "?"} ${valueText(f.value)} ${f.unit ?? ""} (allowed ${valueText(f.min)}–${valueText(f.max)})${refused}`;
  }
  return `Photo added${f.caption ? `: ${f.caption}` : ""}${refused}`;
}

function refusal(op) {
  return op.rejected ? ` (not applied: ${op.rejected.replace(/_/g, " ")})` : "";
}

function opText(op) {
  const field = fieldLabel(op.field);
  const action = ACTIONS[op.action] || op.action || "set to";
  const value = op.value === undefined || op.value === null || op.action === "delete"
    ? "" : ` ${op.action === "edit_text" ? editText(op.value) : valueText(op.value)}`;
  return `${field} ${action}${value}${refusal(op)}`;
}

/** `{inserted, deleted}` (or any value) as "(+12 / -3 characters)". */
function editText(v) {
  if (v && typeof v === "object" && ("inserted" in v || "deleted" in v)) {
    return `(+${v.inserted || 0} / -${v.deleted || 0} characters)`;
  }
  return valueText(v);
}
