// The operator's token: typed once, kept in this browser's localStorage, sent
// only as a bearer header (API calls, photos, the live event stream): never in
// a URL, where it would end up in logs, history and Referer headers.

import { h } from "./dom.js";

const KEY = "permitsync.token";

/** The stored token, or "" when there is none. */
export function getToken() {
  try {
    return localStorage.getItem(KEY) || "";
  } catch {
    return "";
  }
}

/** Store `token` (an empty one forgets it). */
export function setToken(token) {
  try {
    if (token) localStorage.setItem(KEY, token);
    else localStorage.removeItem(KEY);
  } catch {
    // private mode without storage: the token lasts until the page closes
  }
}

/**
 * Show the token prompt in `container`; resolves once the operator entered a
 * token that `check(token)` accepts (it resolves true, or rejects with an
 * error whose message is shown).
 */
export function promptForToken(container, check, message) {
  return new Promise((resolve) => {
    const input = h("input", {
      id: "token", type: "password", name: "token", autocomplete: "current-password",
      required: true, placeholder: "Access token", "aria-describedby": "token-help",
    });
    const error = h("p", { class: "error", role: "alert", hidden: true });
    const button = h("button", { type: "submit", class: "primary" }, "Connect");
    const form = h(
      "form",
      { class: "panel token-form", "data-testid": "token-form" },
      h("h1", {}, "Sign in to this node"),
      h("p", { id: "token-help" }, message ||
        "This node needs an access token. Ask your site administrator for the token of this tablet."),
      h("label", { for: "token" }, "Access token"),
      input,
      error,
      button,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      button.disabled = true;
      error.hidden = true;
      try {
        await check(token);
        setToken(token);
        resolve(token);
      } catch (err) {
        error.textContent = err.message || "That token was not accepted.";
        error.hidden = false;
        button.disabled = false;
        input.select();
      }
    });
    container.replaceChildren(form);
    input.focus();
  });
}
