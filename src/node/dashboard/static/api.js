// The node's REST API, as JSON. A 401 raises `ApiError` with `status` 401,
// which the app answers with the token prompt.

import { getToken } from "./auth.js";

/** An error answer of the API (or a network failure, status 0). */
export class ApiError extends Error {
  constructor(status, code, detail, reason) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    /** Why a write was refused (`interlock`, `invalid_transition`, ...), if said. */
    this.reason = reason;
  }
}

/** Call the API: `api("/v1/entities/ID")`, `api(path, {method, body, token})`. */
export async function api(path, { method = "GET", body, token } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token ?? getToken();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "network", `The node cannot be reached (${e.message}).`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    throw new ApiError(res.status, data?.error, data?.detail || `${res.status} ${res.statusText}`,
      data?.reason);
  }
  return data;
}

/** The image types a photo blob may have (the node refuses any other). */
const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp", "image/heic"];

/**
 * A photo blob as an object URL (`blob:`), fetched with the bearer header so
 * that the token never appears in a URL. Resolves `null` when the node does
 * not have it (yet). The caller revokes the URL when it is no longer shown.
 */
export async function photoUrl(path) {
  const headers = {};
  const bearer = getToken();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const res = await fetch(path, { headers, cache: "default" });
  if (!res.ok) return null;
  const data = await res.blob();
  // a type that is not a photo is kept as bytes, never rendered as a page
  const type = PHOTO_TYPES.includes(data.type) ? data.type : "application/octet-stream";
  return URL.createObjectURL(new Blob([data], { type }));
}

/** Whether `token` is accepted by the node (rejects with a readable error otherwise). */
export async function checkToken(token) {
  try {
    await api("/v1/status", { token });
    return true;
  } catch (e) {
    if (e.status === 401) throw new Error("This token is not valid on this node.");
    throw e;
  }
}
