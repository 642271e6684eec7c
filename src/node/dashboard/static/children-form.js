// Adding a permit's isolation points and closeout from the dashboard, and
// finishing a closeout: the forms post what `POST /v1/entities` takes
// (`type: isolation_point` or `closeout` with the permit's id), and the
// closeout's "Mark completed" patches `completed: true`. Refusals are the
// node's words, shown under the form.

import { api } from "./api.js";
import { h, toast } from "./dom.js";

/** The non-empty, trimmed parts of `text` split by `sep`, without repeats. */
function items(text, sep) {
  return [...new Set(text.split(sep).map((s) => s.trim()).filter(Boolean))];
}

function field(id, label, input) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

/** The submit handling every form here shares. */
function submitting(form, button, error, send) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      await send((problem) => {
        error.textContent = problem;
        error.hidden = false;
      });
    } catch (err) {
      error.textContent = `Not saved: ${err.message}`;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}

/**
 * The form that adds an isolation point (a description and the locks put
 * on it) to permit `permitId`; `onDone(view)` gets the new point's view.
 */
export function isolationForm(permitId, { onDone } = {}) {
  const description = h("input", {
    id: "ip-description", name: "description", type: "text", required: true, "data-keep": "ip-description",
    placeholder: "Valve V-101 upstream of pump P-4", autocomplete: "off",
  });
  const locks = h("input", {
    id: "ip-locks", name: "locks", type: "text", "data-keep": "ip-locks",
    placeholder: "LOCK-17, LOCK-18", autocomplete: "off",
  });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "primary", "data-write": "" }, "Add isolation point");
  const form = h("form", { class: "child-form", "data-testid": "isolation-form", novalidate: true },
    h("h3", {}, "Add an isolation point"),
    field("ip-description", "What is isolated", description),
    field("ip-locks", "Lock ids (comma-separated)", locks),
    error, button);
  submitting(form, button, error, async (refuse) => {
    const text = description.value.trim();
    if (!text) return refuse("Describe the isolation point (what is isolated, where).");
    const view = await api("/v1/entities", {
      method: "POST",
      body: { type: "isolation_point", permit_id: permitId, description: text, lock_ids: items(locks.value, ",") },
    });
    toast(`Isolation point added: ${text}`);
    description.value = "";
    locks.value = "";
    onDone?.(view);
  });
  return form;
}

/**
 * The form that starts the closeout of permit `permitId`: its checklist
 * (one item a line) and notes; `onDone(view)` gets the closeout's view.
 */
export function closeoutForm(permitId, { onDone } = {}) {
  const checklist = h("textarea", {
    id: "co-checklist", name: "checklist", rows: 3, "data-keep": "co-checklist",
    placeholder: "Area left clean\nLocks removed\nPermit holder signed off",
  });
  const notes = h("textarea", { id: "co-notes", name: "notes", rows: 2, "data-keep": "co-notes" });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "primary", "data-write": "" }, "Start closeout");
  const form = h("form", { class: "child-form", "data-testid": "closeout-form", novalidate: true },
    h("h3", {}, "Start the closeout"),
    field("co-checklist", "Checklist (one item a line)", checklist),
    field("co-notes", "Notes", notes),
    error, button);
  submitting(form, button, error, async (refuse) => {
    const list = items(checklist.value, "\n");
    if (list.length === 0) return refuse("List at least one closeout check.");
    const view = await api("/v1/entities", {
      method: "POST",
      body: { type: "closeout", permit_id: permitId, checklist: list, notes: notes.value.trim() },
    });
    toast("Closeout started");
    checklist.value = "";
    notes.value = "";
    onDone?.(view);
  });
  return form;
}

/**
 * The button that marks closeout `view` completed (offered once every check
 * of its list is ticked); `status` shows a refusal.
 */
export function completeButton(view, { onDone, status }) {
  const f = view.fields || {};
  if (f.completed || Object.values(f.checklist || {}).some((ticked) => ticked !== true)) return null;
  const button = h("button", {
    type: "button", class: "primary small", "data-testid": "closeout-complete", "data-write": "",
    onclick: async () => {
      button.disabled = true;
      try {
        const v = await api(`/v1/entities/${encodeURIComponent(view.id)}`, {
          method: "PATCH", body: { completed: true },
        });
        toast("Closeout completed");
        onDone?.(v);
      } catch (e) {
        status.textContent = `Refused: ${e.message}`;
        status.hidden = false;
        button.disabled = false;
      }
    },
  }, "Mark closeout completed");
  return button;
}
