// Who did what: read from an entity's history (`GET /v1/entities/{id}/history`),
// which device wrote each concurrent value of a conflict and who moved a
// permit through its workflow; and how a view's `authorship` entries and a
// history entry's verified `author` are said ("J. Smith on tablet-3, signed").

/** What each verification is called on the page. */
const VERIFICATION = {
  signed: "signed",
  relay_attested: "attested by the relay",
  unverified: "unverified",
};

/**
 * "J. Smith on tablet-3, signed": who (`{device, person, verification,
 * refused?}`, a view's authorship entry or a history entry's author) and how
 * that is known.
 */
export function whoText(a) {
  if (!a) return "unknown";
  const device = a.device || "unknown device";
  const who = a.person ? `${a.person} on ${device}` : device;
  const how = VERIFICATION[a.verification] || a.verification || "unverified";
  return a.refused ? `${who}, ${how} (certificate ${a.refused})` : `${who}, ${how}`;
}

/**
 * A history entry's author as a name: the verified device, else (nothing
 * verifies the change) the device its note claims.
 */
function author(entry) {
  const a = entry.author;
  if (a && a.device && a.verification !== "unverified") return a.device;
  return entry.claimed_device || entry.device
    || (entry.actor ? `actor ${String(entry.actor).slice(0, 8)}` : "unknown device");
}

/**
 * The devices that wrote each value of `field`: a Map from the value's JSON
 * to `[{device, time}]`, latest write first. Rejected writes do not count.
 */
export function writersOf(entries, field) {
  const out = new Map();
  for (const e of entries || []) {
    for (const op of e.ops || []) {
      if (op.field !== field || op.action !== "set" || op.rejected) continue;
      const key = JSON.stringify(op.value);
      if (!out.has(key)) out.set(key, []);
      out.get(key).unshift({ device: author(e), time: (e.time || 0) * 1000 });
    }
  }
  return out;
}

/**
 * Who moved the permit to each status, as far as its history shows:
 * `{submitted, approved, active, suspended, completed, closed, cancelled}`,
 * each `{device, time}`. For `active` (the issue) the first activation, for
 * the others the latest move.
 */
export function statusMoves(entries) {
  const moves = {};
  for (const e of entries || []) {
    for (const op of e.ops || []) {
      if (op.field !== "status" || op.action !== "set" || op.rejected) continue;
      if (typeof op.value !== "string") continue;
      if (op.value === "active" && moves.active) continue;
      moves[op.value] = { device: author(e), time: (e.time || 0) * 1000 };
    }
  }
  return moves;
}

/** Who created the entity (the change that wrote its `type`). */
export function creator(entries) {
  for (const e of entries || []) {
    if ((e.ops || []).some((op) => op.field === "type" && op.action === "set")) {
      return { device: author(e), time: (e.time || 0) * 1000 };
    }
  }
  return null;
}
