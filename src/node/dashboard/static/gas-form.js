// Recording a gas test from the dashboard: gas, value, unit and the allowed
// range, as `POST /v1/entities/{id}/gas-readings` takes them. Common gases
// fill in their usual unit and limits (editable: the site's own limits rule).

import { api } from "./api.js";
import { h, toast } from "./dom.js";
import { num } from "./format.js";

/** Usual units and limits of common gases. */
const PRESETS = {
  O2: { unit: "%", min: 19.5, max: 23.5 },
  H2S: { unit: "ppm", min: 0, max: 10 },
  CO: { unit: "ppm", min: 0, max: 25 },
  LEL: { unit: "%LEL", min: 0, max: 10 },
};

/**
 * The form that records a reading on permit `permitId`; `onDone(view)` gets
 * the permit's new view.
 */
export function gasForm(permitId, { onDone } = {}) {
  const id = (name) => `gas-${name}`;
  const field = (name, label, attrs) => {
    const input = h("input", { id: id(name), name, "data-keep": id(name), ...attrs });
    return [input, h("div", { class: "field" }, h("label", { for: id(name) }, label), input)];
  };
  const [gas, gasField] = field("gas", "Gas", {
    type: "text", list: "gas-names", required: true, autocomplete: "off", placeholder: "H2S",
  });
  const [value, valueField] = field("value", "Reading", {
    type: "number", step: "any", required: true, inputmode: "decimal",
  });
  const [unit, unitField] = field("unit", "Unit", { type: "text", required: true, placeholder: "ppm" });
  const [min, minField] = field("min", "Min allowed", {
    type: "number", step: "any", required: true, inputmode: "decimal",
  });
  const [max, maxField] = field("max", "Max allowed", {
    type: "number", step: "any", required: true, inputmode: "decimal",
  });
  const names = h("datalist", { id: "gas-names" }, Object.keys(PRESETS).map((g) => h("option", { value: g })));
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "primary", "data-write": "" }, "Record reading");

  // a known gas fills in what is still empty
  gas.addEventListener("change", () => {
    const p = PRESETS[gas.value.trim().toUpperCase()];
    if (!p) return;
    gas.value = gas.value.trim().toUpperCase();
    if (!unit.value) unit.value = p.unit;
    if (min.value === "") min.value = String(p.min);
    if (max.value === "") max.value = String(p.max);
  });

  const form = h("form", { class: "gas-form", "data-testid": "gas-form", novalidate: true },
    h("h3", {}, "Record a gas test"),
    h("div", { class: "gas-grid" }, gasField, valueField, unitField, minField, maxField),
    names, error, button);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = {
      gas: gas.value.trim(),
      value: Number(value.value),
      unit: unit.value.trim(),
      min: Number(min.value),
      max: Number(max.value),
    };
    const problem = !body.gas ? "Name the gas."
      : value.value === "" || !Number.isFinite(body.value) ? "Enter the reading as a number."
        : !body.unit ? "Enter the unit (ppm, %, %LEL)."
          : min.value === "" || max.value === "" || !Number.isFinite(body.min) || !Number.isFinite(body.max)
            ? "Enter the allowed range as numbers."
            : body.min > body.max ? "The lowest allowed value is above the highest." : null;
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    button.disabled = true;
    try {
      const view = await api(`/v1/entities/${encodeURIComponent(permitId)}/gas-readings`, {
        method: "POST", body,
      });
      const out = body.value < body.min || body.value > body.max;
      toast(`${body.gas} ${num(body.value)} ${body.unit} recorded${out ? ": OUT OF RANGE" : ""}`,
        out ? "error" : "ok");
      value.value = "";
      onDone?.(view);
    } catch (err) {
      error.textContent = `Not recorded: ${err.message}`;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
