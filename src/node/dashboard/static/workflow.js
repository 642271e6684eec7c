// The permit workflow as the node enforces it (`PermitStatus::can_transition_to`
// in src/model/permit_status.rs; a unit test of src/node/dashboard checks that
// this table says the same): which moves a permit may make from its status,
// and what the buttons say.

/** Status -> the statuses it may move to, in the order the buttons show. */
export const TRANSITIONS = {
  draft: ["submitted", "cancelled"],
  submitted: ["approved", "draft", "cancelled"],
  approved: ["active", "cancelled"],
  active: ["suspended", "completed"],
  suspended: ["active", "completed", "cancelled"],
  completed: ["closed"],
  closed: [],
  cancelled: [],
};

/** Moves that end the permit's life: asked twice before they are sent. */
export const CONFIRM = new Set(["cancelled"]);

/** The moves a permit in `status` may make. */
export function transitionsFrom(status) {
  return TRANSITIONS[status] || [];
}

/** The button's words for `from -> to`. */
export function actionLabel(from, to) {
  if (to === "active") return from === "suspended" ? "Resume work" : "Activate (issue permit)";
  return {
    submitted: "Submit for approval",
    draft: "Return to draft",
    approved: "Approve",
    suspended: "Suspend work",
    completed: "Complete work",
    closed: "Close permit",
    cancelled: "Cancel permit",
  }[to] || `Move to ${to}`;
}

/** What the toast says once the move is done. */
export function doneLabel(from, to) {
  if (to === "active") return from === "suspended" ? "Work resumed" : "Permit activated";
  return {
    submitted: "Permit submitted for approval",
    draft: "Permit returned to draft",
    approved: "Permit approved",
    suspended: "Work suspended",
    completed: "Work completed",
    closed: "Permit closed",
    cancelled: "Permit cancelled",
  }[to] || `Permit moved to ${to}`;
}

/** The primary move (a filled button); the rest are outlined. */
export function isPrimary(from, to) {
  return ({
    draft: "submitted", submitted: "approved", approved: "active",
    active: "completed", suspended: "active", completed: "closed",
  })[from] === to;
}
