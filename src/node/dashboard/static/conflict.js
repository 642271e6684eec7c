// A conflict, side by side: every concurrent value of a field with a "Keep
// this value" button, and a box to write a merged value. Resolving writes a
// new value that overwrites all of them (`POST /v1/entities/{id}/resolve`), so
// the conflict disappears on every replica once they sync.

import { api } from "./api.js";
import { h, toast } from "./dom.js";
import { dateTime, fieldLabel, valueText } from "./format.js";

/**
 * The card of `conflict` (`{field, values, winner, merge_hint}`) of entity
 * `entityId`. `onResolved(view)` gets the entity's new view. `writers` (a
 * Map from a value's JSON to the devices that wrote it, `authors.js`) says
 * who wrote each version; without `canWrite` (a read-only token) the card
 * has no buttons.
 */
export function conflictCard(entityId, conflict, {
  onResolved, onError, writers, canWrite = true,
} = {}) {
  const { field, values = [], winner } = conflict;
  const label = fieldLabel(field);
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const buttons = [];

  async function resolve(body, what) {
    for (const b of buttons) b.disabled = true;
    status.hidden = true;
    try {
      const view = await api(`/v1/entities/${encodeURIComponent(entityId)}/resolve`, {
        method: "POST",
        body: { field, ...body },
      });
      toast(`${label}: ${what}`);
      onResolved?.(view);
    } catch (e) {
      for (const b of buttons) b.disabled = false;
      if (onError?.(e)) return;
      status.textContent = e.status === 404 && e.code === "not_found"
        ? "This node cannot resolve conflicts yet (no resolve endpoint). Update the node."
        : `Could not resolve: ${e.message}`;
      status.hidden = false;
    }
  }

  const winnerIndex = lastIndexOf(values, winner);
  const options = values.map((value, i) => {
    const isWinner = i === winnerIndex;
    const button = h("button", {
      type: "button",
      class: "primary",
      "data-action": "keep",
      onclick: () => isWinner
        ? resolve({ resolution: "use_server" }, "kept the value shown")
        : resolve({ resolution: "keep_mine", value }, "kept the chosen value"),
    }, "Keep this value");
    buttons.push(button);
    return h(
      "div",
      {
        class: `choice${isWinner ? " winner" : ""}`,
        "data-testid": "conflict-value",
        "data-value": typeof value === "string" ? value : JSON.stringify(value),
        "data-winner": isWinner ? "true" : "false",
      },
      h("span", { class: "choice-tag" }, isWinner ? "Shown now" : `Version ${i + 1}`),
      h("p", { class: "choice-value" }, valueText(value)),
      writers ? writtenBy(writers.get(JSON.stringify(value))) : null,
      canWrite ? button : null,
    );
  });

  const mergedId = `merge-${entityId}-${field}`;
  const merged = h("input", {
    id: mergedId, type: "text", "data-keep": mergedId,
    placeholder: `A ${label.toLowerCase()} that combines them`,
  });
  const mergeButton = h("button", {
    type: "button", class: "secondary", "data-action": "merge",
    onclick: () => {
      const value = merged.value.trim();
      if (!value) {
        merged.focus();
        status.textContent = "Type the merged value first.";
        status.hidden = false;
        return;
      }
      resolve({ resolution: "merge", value }, "wrote the merged value");
    },
  }, "Write merged value");
  buttons.push(mergeButton);

  return h(
    "div",
    { class: "conflict", "data-testid": "conflict", "data-entity": entityId, "data-field": field },
    h("h3", {}, `${label}: ${values.length} versions were written at the same time`),
    h("p", { class: "hint" }, canWrite
      ? "Choose the version to keep, or write one that combines them. " +
        "Every device will show the result once it syncs."
      : "A supervisor with a read-write token can choose the version to keep."),
    h("div", { class: "choices" }, options),
    canWrite
      ? h("div", { class: "merge" },
        h("label", { for: mergedId }, "Or write a merged value"),
        h("div", { class: "merge-row" }, merged, mergeButton))
      : null,
    status,
  );
}

/** "Written by tablet-7 · 12 Mar, 14:02" (the latest writer first). */
function writtenBy(list) {
  if (!list || list.length === 0) {
    return h("p", { class: "hint", "data-testid": "conflict-author" }, "Writer not in this node's history");
  }
  const [latest, ...others] = list;
  const devices = [...new Set(others.map((w) => w.device))].filter((d) => d !== latest.device);
  return h("p", { class: "hint author", "data-testid": "conflict-author", "data-device": latest.device },
    "Written by ", h("strong", {}, latest.device), ` · ${dateTime(latest.time)}`,
    devices.length ? ` (also ${devices.join(", ")})` : "");
}

function lastIndexOf(values, winner) {
  const key = JSON.stringify(winner);
  for (let i = values.length - 1; i >= 0; i -= 1) {
    if (JSON.stringify(values[i]) === key) return i;
  }
  return values.length - 1;
}
