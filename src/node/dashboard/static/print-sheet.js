// The printed permit: a sheet that only print media shows (style.css hides
// it on screen and hides everything else in print). What the permit says,
// its checklist, PPE, gas tests, isolation points and closeout, who created,
// submitted, approved and issued it (the view's verified authors, else what
// its history's notes claim), and lines
// for the signatures the site's procedure asks for on paper.

import { h } from "./dom.js";
import { dateTime, num, short, statusLabel } from "./format.js";
import { creator, statusMoves, whoText } from "./authors.js";

/** The moves the sheet records, in workflow order. */
const MOVES = [
  ["submitted", "Submitted for approval"],
  ["approved", "Approved"],
  ["active", "Issued (activated)"],
  ["suspended", "Suspended"],
  ["completed", "Work completed"],
  ["closed", "Closed"],
  ["cancelled", "Cancelled"],
];

/** Who signs the paper copy. */
const SIGNATURES = [
  "Issuing authority",
  "Permit holder (performing authority)",
  "Isolations verified by",
  "Permit closed out by",
];

/** The moves the view's `authorship` names a verified author for. */
const VERIFIED_MOVES = { submitted: "submitted_by", approved: "approved_by", active: "activated_by" };

/**
 * A row of the authorisations table: the view's verified author of the
 * step when it names one, else what the history's notes say.
 */
function authorisation(step, label, act, fallback) {
  const text = act ? `${whoText(act)}, ${dateTime((act.time || 0) * 1000)}` : fallback;
  return h("tr", { "data-step": step },
    h("td", {}, label),
    h("td", { "data-verification": act ? act.verification : "" }, text));
}

const table = (head, rows) => h("table", { class: "print-table" },
  h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
  h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));

/**
 * The sheet of permit `view`, with its children's views `kids`, its history
 * `entries` (oldest first; `null` when the node has none) and its `alarms`
 * (as `GET /v1/alarms` gives them).
 */
export function printSheet(view, kids, entries, alarms) {
  const f = view.fields || {};
  const made = creator(entries);
  const moves = statusMoves(entries);
  const authorship = view.authorship || {};
  const checklist = Object.entries(f.safety_checklist || {});
  const ppe = Array.isArray(f.ppe_requirements) ? f.ppe_requirements : Object.keys(f.ppe_requirements || {});
  const readings = Object.entries(f.gas_readings || {})
    .map(([id, r]) => ({ id, ...r }))
    .sort((a, b) => (a.taken_at || 0) - (b.taken_at || 0) || (a.id < b.id ? -1 : 1));
  const points = kids.filter((k) => k.type === "isolation_point");
  const closeouts = kids.filter((k) => k.type === "closeout");
  const who = (m) => (m ? `${m.device}, ${dateTime(m.time)}` : "—");

  return h("section", { class: "print-sheet", "data-testid": "print-sheet" },
    h("header", { class: "print-head" },
      h("div", {},
        h("p", { class: "print-kind" }, "Permit to Work"),
        h("h1", {}, f.title || "(untitled permit)"),
        h("p", {}, [f.location, f.work_type].filter(Boolean).join(" · "))),
      h("dl", { class: "print-facts" },
        h("dt", {}, "Permit no."), h("dd", { class: "mono" }, view.id),
        h("dt", {}, "Status"), h("dd", { "data-testid": "print-status" }, statusLabel(f.status)),
        h("dt", {}, "Printed"), h("dd", {}, dateTime(Date.now())))),
    alarms.length
      ? h("div", { class: "print-alarm" },
        h("strong", {}, "SAFETY RULES NOT MET AT PRINTING"),
        h("ul", {}, alarms.map((a) => h("li", {}, a.detail))))
      : null,
    h("h2", {}, "Work"),
    h("p", { class: "print-description" }, f.description || "No description given."),
    h("div", { class: "print-two" },
      h("div", {},
        h("h2", {}, "Safety checklist"),
        checklist.length
          ? h("ul", { class: "print-checks" }, checklist.map(([item, done]) =>
            h("li", {}, h("span", { class: "box" }, done ? "☑" : "☐"), ` ${item}`)))
          : h("p", {}, "No checklist items.")),
      h("div", {},
        h("h2", {}, "PPE required"),
        ppe.length ? h("ul", {}, ppe.map((p) => h("li", {}, p))) : h("p", {}, "None listed."))),
    h("h2", {}, "Gas tests"),
    readings.length
      ? table(["Gas", "Reading", "Allowed", "Taken", "By", "Result"], readings.map((r) => {
        const v = Number(r.value);
        const bad = !(v >= Number(r.min) && v <= Number(r.max));
        return [r.gas || "?", `${num(r.value)} ${r.unit || ""}`, `${num(r.min)}–${num(r.max)} ${r.unit || ""}`,
          dateTime(r.taken_at), r.taken_by || "—", bad ? "OUT OF RANGE" : "in range"];
      }))
      : h("p", {}, "No gas tests recorded."),
    h("h2", {}, "Isolation points"),
    points.length
      ? table(["Isolation point", "Status", "Locks"], points.map((p) => {
        const pf = p.fields || {};
        const locks = Array.isArray(pf.lock_ids) ? pf.lock_ids : Object.keys(pf.lock_ids || {});
        return [pf.description || `Isolation point ${short(p.id)}`, statusLabel(pf.status), locks.join(", ") || "—"];
      }))
      : h("p", {}, "No isolation points."),
    h("h2", {}, "Closeout"),
    closeouts.length
      ? closeouts.map((c) => {
        const cf = c.fields || {};
        const items = Object.entries(cf.checklist || {});
        return h("div", {},
          h("p", {}, cf.completed ? "Closeout completed." : "Closeout open."),
          items.length ? h("ul", { class: "print-checks" }, items.map(([item, done]) =>
            h("li", {}, h("span", { class: "box" }, done ? "☑" : "☐"), ` ${item}`))) : null,
          cf.notes ? h("p", {}, cf.notes) : null);
      })
      : h("p", {}, "No closeout started."),
    h("h2", {}, "Authorisations"),
    h("table", { class: "print-table", "data-testid": "print-authorisations" },
      h("thead", {}, h("tr", {}, ["Step", "By (person on device, how verified), when"].map((c) => h("th", {}, c)))),
      h("tbody", {},
        authorisation("created", "Created", authorship.created_by,
          made ? who(made) : `${f.created_by || "—"}, unverified, ${dateTime(f.created_at)}`),
        MOVES.filter(([st]) => moves[st] || ["submitted", "approved", "active"].includes(st))
          .map(([st, label]) => authorisation(st, label, authorship[VERIFIED_MOVES[st]], who(moves[st]))))),
    entries === null ? h("p", { class: "hint" }, "This node keeps no history: authorisations unknown.") : null,
    h("h2", {}, "Signatures"),
    h("table", { class: "print-table signatures", "data-testid": "print-signatures" },
      h("thead", {}, h("tr", {}, ["Role", "Name", "Signature", "Date and time"].map((c) => h("th", {}, c)))),
      h("tbody", {}, SIGNATURES.map((role) => h("tr", {}, h("td", {}, role), h("td"), h("td"), h("td"))))),
  );
}
