// A new permit (`#/new`): title, location, work type, description, PPE and
// the safety checklist, created with `POST /v1/entities` as a draft. The id
// is made here, so that a retry after a lost answer creates nothing twice.

import { api } from "./api.js";
import { h, panel, toast } from "./dom.js";

/** Work types people pick from (any other may be typed). */
const WORK_TYPES = [
  "hot_work", "confined_space", "electrical", "mechanical", "working_at_height", "excavation",
];

/** PPE offered as ticks (any other may be typed). */
const COMMON_PPE = [
  "hard hat", "safety glasses", "gloves", "safety boots", "hearing protection",
  "high-visibility vest", "gas monitor", "fire-resistant clothing", "harness", "respirator",
];

/** The lines of a text box, trimmed, without blanks or repeats. */
function lines(text, split = /\n/) {
  return [...new Set(text.split(split).map((l) => l.trim()).filter(Boolean))];
}

/**
 * A random UUID (v4). `crypto.randomUUID` exists only in secure contexts,
 * and a tablet may reach the node over plain HTTP on the site's network.
 */
export function newId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Render the form (a read-only token is told it cannot create permits). */
export function renderNewPermit(ctx) {
  if (!ctx.canWrite()) {
    return h("div", { class: "page" },
      h("a", { class: "back", href: "#/permits" }, "← All permits"),
      h("p", { class: "alert muted" }, "This token is read-only: it cannot create permits."));
  }
  // one id per permit being written, kept until it is created
  const id = (ctx.state.newPermitId ||= newId());
  const input = (name, label, attrs = {}, hint = null) => {
    const el = h(attrs.rows ? "textarea" : "input", {
      id: `new-${name}`, name, "data-keep": `new-${name}`, ...(attrs.rows ? {} : { type: "text" }), ...attrs,
    });
    return [el, h("div", { class: "field" },
      h("label", { for: `new-${name}` }, label), el, hint ? h("p", { class: "hint" }, hint) : null)];
  };
  const [title, titleField] = input("title", "Title", { required: true, maxlength: 200,
    placeholder: "Replace mechanical seal on P-201" });
  const [where, whereField] = input("location", "Location", { placeholder: "Pump house 2" });
  const [workType, workTypeField] = input("work_type", "Work type", {
    list: "work-types", placeholder: "mechanical", autocomplete: "off",
  }, "Hot work and confined space need a gas test before the permit can be activated.");
  const [description, descriptionField] = input("description", "Description", { rows: 4,
    placeholder: "What is to be done, and how" });
  const ppeBoxes = COMMON_PPE.map((p) => h("input", { type: "checkbox", value: p, id: `ppe-${p}` }));
  const [otherPpe, otherPpeField] = input("ppe_other", "Other PPE (separate with commas)", {
    placeholder: "face shield, apron" });
  const [checks, checksField] = input("checklist", "Safety checklist (one item per line)", { rows: 5,
    placeholder: "Area barriered\nFire watch posted\nGas test done" },
  "Every item must be checked before the permit can be activated.");
  const error = h("p", { class: "error", role: "alert", hidden: true, "data-testid": "form-error" });
  const submit = h("button", { type: "submit", class: "primary", "data-write": "" }, "Create permit");

  const form = h("form", { class: "permit-form", "data-testid": "permit-form", novalidate: true },
    titleField, whereField, workTypeField,
    h("datalist", { id: "work-types" }, WORK_TYPES.map((w) => h("option", { value: w }))),
    descriptionField,
    h("fieldset", { class: "field" },
      h("legend", {}, "PPE required"),
      h("div", { class: "ppe-grid" }, ppeBoxes.map((box) =>
        h("label", { class: "check", for: box.id }, box, ` ${box.value}`))),
      otherPpeField),
    checksField,
    error,
    h("div", { class: "action-row" },
      submit,
      h("a", { class: "button secondary", href: "#/permits" }, "Cancel")));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!title.value.trim()) {
      error.textContent = "A permit needs a title.";
      error.hidden = false;
      title.focus();
      return;
    }
    const body = {
      type: "permit",
      id,
      title: title.value.trim(),
      location: where.value.trim(),
      work_type: workType.value.trim(),
      description: description.value.trim(),
      ppe_requirements: [...new Set([
        ...ppeBoxes.filter((b) => b.checked).map((b) => b.value),
        ...lines(otherPpe.value, /,|\n/),
      ])],
      safety_checklist: lines(checks.value),
    };
    error.hidden = true;
    submit.disabled = true;
    try {
      const view = await api("/v1/entities", { method: "POST", body });
      ctx.state.newPermitId = null;
      toast(`Permit created: ${body.title}`);
      for (const el of form.querySelectorAll("[data-keep]")) el.value = "";
      location.hash = `#/permit/${view.id}`;
    } catch (err) {
      error.textContent = `Not created: ${err.message}`;
      error.hidden = false;
      submit.disabled = false;
    }
  });

  return h("div", { class: "page", "data-testid": "new-permit-page" },
    h("a", { class: "back", href: "#/permits" }, "← All permits"),
    h("h1", {}, "New permit"),
    panel(null, {}, h("p", { class: "hint" },
      "The permit starts as a draft. Add isolation points and gas tests, then submit it for approval."),
    form));
}
