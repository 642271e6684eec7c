// Shared helpers for the JavaScript interop scripts: document id <-> UUID,
// sync URLs, a JS automerge-repo client, bounded polling and small JSON HTTP
// calls. No state; every wait is bounded.

import {
  Repo,
  documentIdToBinary,
  isImmutableString,
  parseAutomergeUrl,
  stringifyAutomergeUrl,
} from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";

// ---------------------------------------------------------------------------
// Ids. On the wire a document id is bs58check of the 16 UUID bytes
// (automerge-repo's own DocumentId); the REST API uses the hyphenated UUID.

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** bs58check document id -> hyphenated lower-case UUID. */
export function documentIdToUuid(documentId) {
  const bytes = documentIdToBinary(documentId);
  if (!bytes || bytes.length !== 16) {
    throw new Error(`not a 16-byte automerge-repo document id: ${documentId}`);
  }
  const hex = Buffer.from(bytes).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Hyphenated UUID -> bs58check document id. */
export function uuidToDocumentId(uuid) {
  if (!UUID_RE.test(uuid)) throw new Error(`not a UUID: ${uuid}`);
  const bytes = Uint8Array.from(Buffer.from(uuid.replace(/-/g, ""), "hex"));
  return parseAutomergeUrl(stringifyAutomergeUrl(bytes)).documentId;
}

/** `http://host:port` (or `ws://...`) -> `ws://host:port/v1/sync[?token=...]`. */
export function syncUrl(baseUrl, token) {
  const url = new URL("/v1/sync", baseUrl);
  url.protocol = url.protocol === "https:" || url.protocol === "wss:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  return url.toString();
}

/**
 * A raw Automerge string as a JS string. JS automerge 3 reads a Text object
 * as a plain string, but a scalar string (what a Rust writer's
 * `ScalarValue::Str` becomes) as an `ImmutableString` object.
 */
export function asString(value) {
  if (typeof value === "string") return value;
  if (isImmutableString(value)) return value.val;
  return undefined;
}

// ---------------------------------------------------------------------------
// Bounded waiting.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Poll `probe` every `intervalMs` until it returns `{ ok: true, value }`, or
 * fail after `timeoutMs` with `label` and the last observation. `probe` may
 * be async and may throw (counted as a miss; the error is the observation).
 */
export async function waitFor(label, probe, { timeoutMs = 20_000, intervalMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = "nothing observed yet";
  for (;;) {
    try {
      const r = await probe();
      if (r && r.ok) return r.value;
      if (r && r.seen !== undefined) last = r.seen;
    } catch (e) {
      last = `error: ${e && e.message ? e.message : e}`;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}; last seen: ${last}`);
    }
    await sleep(intervalMs);
  }
}

/** Reject after `ms` with `label` unless `promise` settles first. */
export function withTimeout(label, promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------
// HTTP (JSON, bearer token). Every request has its own timeout.

const HTTP_TIMEOUT_MS = 5_000;

async function request(method, baseUrl, path, token, body) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(new URL(path, baseUrl), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

export const getJson = (baseUrl, path, token) => request("GET", baseUrl, path, token);
export const patchJson = (baseUrl, path, token, body) => request("PATCH", baseUrl, path, token, body);

/** A short, one-line description of a response for error messages. */
export function describe(res) {
  const body = res.text.length > 300 ? `${res.text.slice(0, 300)}...` : res.text;
  return `HTTP ${res.status} ${body.replace(/\s+/g, " ")}`;
}

// ---------------------------------------------------------------------------
// automerge-repo client.

/**
 * An unmodified automerge-repo `Repo` with one WebSocket client adapter and
 * no storage, connected to `wsUrl`. Resolves once the server's `peer`
 * message arrived (the join/peer handshake is done).
 */
export async function connectRepo(wsUrl, { timeoutMs = 10_000, retryMs = 1_000 } = {}) {
  const adapter = new WebSocketClientAdapter(wsUrl, retryMs);
  const repo = new Repo({ network: [adapter] });
  await waitFor(`the join/peer handshake with ${redact(wsUrl)}`, () => ({
    ok: repo.peers.length > 0,
    seen: `socket readyState ${adapter.socket ? adapter.socket.readyState : "none"}, no peer message`,
  }), { timeoutMs, intervalMs: 50 });
  return { repo, adapter };
}

/** Shut a repo down, bounded (its adapter would otherwise keep retrying). */
export async function closeRepo(repo, ms = 2_000) {
  try {
    await withTimeout("repo shutdown", repo.shutdown(), ms);
  } catch {
    // best effort
  }
}

/** A URL with its `token` query parameter hidden, for messages. */
export function redact(url) {
  const u = new URL(url);
  if (u.searchParams.has("token")) u.searchParams.set("token", "***");
  return u.toString();
}
