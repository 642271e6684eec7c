// Building DOM without innerHTML: every piece of data goes in as text, so
// nothing a device wrote can inject markup or script into the page.

/**
 * Create an element. `attrs` keys: `class`, `text`, `on<event>` handlers,
 * `dataset` (an object), booleans (`hidden`, `disabled`), or attributes.
 * Children are nodes, strings (as text), arrays, or null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** A coloured status pill. `kind` picks the colour (`status-active`, ...). */
export function badge(text, kind) {
  return h("span", { class: `badge ${kind || ""}`.trim() }, text);
}

/** A titled panel (a card with a heading). */
export function panel(title, attrs, ...children) {
  const { class: cls, ...rest } = attrs || {};
  return h(
    "section",
    { class: `panel ${cls || ""}`.trim(), ...rest },
    title ? h("h2", {}, title) : null,
    ...children,
  );
}

/** A muted "nothing here" line. */
export function empty(text) {
  return h("p", { class: "empty" }, text);
}

/** Show a short message at the bottom of the screen. */
export function toast(text, kind = "ok") {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.hidden = true), 4000);
}
