// What a supervisor can do to a permit from the dashboard, with the token's
// rights (a read-only token gets none of this): move it through the workflow
// (the moves its status allows and the token's roles allow, as buttons), and
// show the node's refusal in plain words when an interlock, the activation
// guard or the roles say no.

import { api } from "./api.js";
import { h, toast } from "./dom.js";
import { statusLabel } from "./format.js";
import { actionLabel, CONFIRM, doneLabel, isPrimary, transitionsFrom } from "./workflow.js";

/** How long a "tap again to confirm" button waits for the second tap. */
const CONFIRM_MS = 5000;

/** Why the node refused a move, for a person. */
function refusalTitle(e) {
  if (e.reason === "interlock") return "Interlock: not allowed yet";
  if (e.reason === "guard_failed") return "Activation checks not met";
  if (e.reason === "invalid_transition") return "Not a move the workflow allows now";
  if (e.reason === "not_authorized") return "Your roles do not allow this move";
  if (e.status === 403) return "This token may not change permits";
  return "The node refused the change";
}

/** "performer, gas tester" (or "no role"). */
function rolesText(roles) {
  return roles.length ? roles.map((r) => r.replace(/_/g, " ")).join(", ") : "no role";
}

/**
 * The workflow panel of permit `view`: one button per move its status allows
 * and the token's roles allow (`ctx.allowedMoves`).
 * `ctx.state.refusals` keeps the last refusal per permit, so that a live
 * re-render does not wipe it; `onDone(view)` gets the new view.
 */
export function actionsPanel(ctx, view, { onDone } = {}) {
  const from = view.fields?.status;
  const workflow = transitionsFrom(from);
  const moves = ctx.allowedMoves(from, workflow);
  const refusals = (ctx.state.refusals ||= new Map());
  const refusal = refusals.get(view.id);
  const error = h("div", { class: "alert danger refusal", role: "alert", "data-testid": "action-error",
    hidden: !refusal });
  const showRefusal = (r) => {
    error.replaceChildren(h("strong", {}, r.title), h("p", {}, r.detail));
    error.hidden = false;
  };
  if (refusal) showRefusal(refusal);
  const buttons = [];

  async function move(to, button) {
    for (const b of buttons) b.disabled = true;
    try {
      const next = await api(`/v1/entities/${encodeURIComponent(view.id)}`, {
        method: "PATCH", body: { status: to },
      });
      refusals.delete(view.id);
      error.hidden = true;
      toast(doneLabel(from, to));
      onDone?.(next);
    } catch (e) {
      const r = { title: refusalTitle(e), detail: e.message };
      refusals.set(view.id, r);
      showRefusal(r);
      toast("Refused: see the message on the permit", "error");
    } finally {
      for (const b of buttons) b.disabled = false;
      button.textContent = actionLabel(from, to);
    }
  }

  for (const to of moves) {
    let armed = null;
    const button = h("button", {
      type: "button",
      class: `${isPrimary(from, to) ? "primary" : "secondary"}${to === "cancelled" ? " danger" : ""}`,
      "data-testid": "transition", "data-to": to, "data-write": "",
      onclick: () => {
        if (CONFIRM.has(to) && !armed) {
          button.textContent = `Tap again to ${actionLabel(from, to).toLowerCase()}`;
          armed = setTimeout(() => {
            armed = null;
            button.textContent = actionLabel(from, to);
          }, CONFIRM_MS);
          return;
        }
        clearTimeout(armed);
        armed = null;
        move(to, button).catch(() => {});
      },
    }, actionLabel(from, to));
    buttons.push(button);
  }

  return h("section", { class: "panel actions screen-only", "data-testid": "actions" },
    h("h2", {}, `Workflow: ${statusLabel(from)}`),
    moves.length
      ? h("div", { class: "action-row" }, buttons)
      : h("p", { class: "empty", "data-testid": "no-moves" }, workflow.length
        ? `Your roles (${rolesText(ctx.roles())}) allow no move while the permit is ${statusLabel(from).toLowerCase()}.`
        : "This permit's workflow has ended: no further moves."),
    moves.length < workflow.length && moves.length
      ? h("p", { class: "hint", "data-testid": "roles-hint" },
        `Only the moves your roles (${rolesText(ctx.roles())}) allow are shown.`)
      : null,
    error);
}

/** The next status of an isolation point, and its button's words. */
const ISOLATION_NEXT = {
  assigned: ["isolated", "Mark isolated"],
  isolated: ["verified", "Mark verified"],
  verified: ["deisolated", "Mark de-isolated"],
};

/**
 * The button that raises isolation point `view` to its next status (none
 * once de-isolated). `onDone(view)` gets its new view; a refusal is shown
 * in `status`.
 */
export function isolationButton(view, { onDone, status }) {
  const next = ISOLATION_NEXT[view.fields?.status];
  if (!next) return null;
  const [to, label] = next;
  const button = h("button", {
    type: "button", class: "secondary small", "data-testid": "isolation-action", "data-to": to,
    "data-write": "",
    onclick: async () => {
      button.disabled = true;
      try {
        const v = await api(`/v1/entities/${encodeURIComponent(view.id)}`, {
          method: "PATCH", body: { status: to },
        });
        toast(`${view.fields?.description || "Isolation point"}: ${statusLabel(to).toLowerCase()}`);
        onDone?.(v);
      } catch (e) {
        status.textContent = `Refused: ${e.message}`;
        status.hidden = false;
        button.disabled = false;
      }
    },
  }, label);
  return button;
}
