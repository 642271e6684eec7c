// Words and numbers as a site supervisor reads them.

/** Permit statuses, in the order the overview shows their groups. */
export const PERMIT_STATUSES = [
  "active", "suspended", "approved", "submitted", "draft", "completed", "closed", "cancelled",
];

/** Statuses whose group starts folded on the overview (finished work). */
export const FOLDED_STATUSES = new Set(["closed", "cancelled"]);

const LABELS = {
  draft: "Draft", submitted: "Submitted", approved: "Approved", active: "Active",
  suspended: "Suspended", completed: "Completed", closed: "Closed", cancelled: "Cancelled",
  assigned: "Assigned", isolated: "Isolated", verified: "Verified", deisolated: "De-isolated",
};

/** A status as a label ("active" -> "Active"). */
export function statusLabel(status) {
  if (!status) return "Unknown";
  return LABELS[status] || status.charAt(0).toUpperCase() + status.slice(1);
}

/** The CSS class of a status badge. */
export function statusClass(status) {
  return `status-${status || "unknown"}`;
}

const FIELD_LABELS = {
  title: "Title", location: "Location", work_type: "Work type", description: "Description",
  status: "Status", notes: "Notes", type: "Type", permit_id: "Permit",
  ppe_requirements: "PPE", safety_checklist: "Safety checklist", lock_ids: "Locks",
  gas_readings: "Gas readings", photos: "Photos", checklist: "Checklist",
  completed: "Completed", deleted: "Deleted",
};

/** A field name as a label ("work_type" -> "Work type"). */
export function fieldLabel(field) {
  return FIELD_LABELS[field] || String(field).replace(/_/g, " ");
}

/** Entity types as words. */
export function typeLabel(type) {
  return { permit: "Permit", isolation_point: "Isolation point", closeout: "Closeout" }[type]
    || type || "Entity";
}

/** Any JSON value as short text. */
export function valueText(value) {
  if (value === null || value === undefined) return "(empty)";
  if (typeof value === "string") return value === "" ? "(empty)" : value;
  return JSON.stringify(value);
}

/** Milliseconds since the epoch as a local date and time. */
export function dateTime(ms) {
  if (!ms) return "never";
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return "unknown";
  return d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

/** Milliseconds since the epoch as "5 min ago". */
export function ago(ms, now = Date.now()) {
  if (!ms) return "never";
  const s = Math.round((now - ms) / 1000);
  if (s < 0) return "just now";
  if (s < 45) return "just now";
  if (s < 90) return "1 min ago";
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const hrs = Math.round(m / 60);
  if (hrs < 36) return `${hrs} h ago`;
  return `${Math.round(hrs / 24)} days ago`;
}

/** A number without float noise (12.500000001 -> "12.5"). */
export function num(x) {
  if (typeof x !== "number" || !Number.isFinite(x)) return String(x ?? "");
  return String(Math.round(x * 1000) / 1000);
}

/** The first 8 characters of an id or hash. */
export function short(id) {
  return String(id || "").slice(0, 8);
}

/** Bytes as "1.2 MB". */
export function bytes(n) {
  if (typeof n !== "number") return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
