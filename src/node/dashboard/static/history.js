// An entity's history (`GET /v1/entities/{id}/history`): who changed what and
// when, newest first, with conflict resolutions called out.

import { api } from "./api.js";
import { badge, empty, h } from "./dom.js";
import { dateTime, fieldLabel, short, valueText } from "./format.js";

/** How many entries show before "Show all". */
const FIRST = 20;

/** The history panel's content for entity `id` (fetched now). */
export async function historyList(id) {
  let data;
  try {
    data = await api(`/v1/entities/${encodeURIComponent(id)}/history`);
  } catch (e) {
    if (e.status === 404 && e.code === "not_found") {
      return empty("This node does not serve history yet.");
    }
    throw e;
  }
  const entries = [...(data?.entries || [])].reverse();
  if (entries.length === 0) return empty("No changes recorded.");
  const list = h("ol", { class: "history", "data-testid": "history" });
  const more = entries.length > FIRST
    ? h("button", {
      type: "button", class: "link",
      onclick: () => {
        list.replaceChildren(...entries.map(entry));
        more.remove();
      },
    }, `Show all ${entries.length} changes`)
    : null;
  list.replaceChildren(...entries.slice(0, FIRST).map(entry));
  return h("div", {}, list, more);
}

function entry(e) {
  const who = e.device || `actor ${short(e.actor)}`;
  const ops = (e.ops || []).map(opText).filter(Boolean);
  return h(
    "li",
    { class: e.resolution ? "resolution" : "" },
    h("div", { class: "history-head" },
      h("time", { datetime: new Date((e.time || 0) * 1000).toISOString() }, dateTime((e.time || 0) * 1000)),
      h("span", { class: "who" }, who),
      e.resolution ? badge("Conflict resolved", "status-verified") : null),
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
  return r.value === undefined || r.value === null ? how : `${how}: "${valueText(r.value)}"`;
}

function opText(op) {
  if (!op || !op.field) return null;
  const field = fieldLabel(op.field);
  const action = op.action || "set";
  if (op.value === undefined || op.value === null) return `${field}: ${action}`;
  return `${field}: ${action} ${valueText(op.value)}`;
}
