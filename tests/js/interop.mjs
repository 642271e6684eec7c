#!/usr/bin/env node
// Interop check: an unmodified JavaScript automerge-repo client against a
// permitsync relay and a permitsync device node.
//
//   node interop.mjs RELAY_HTTP_URL DEVICE_HTTP_URL TOKEN_JS TOKEN_DEVICE_REST
//   node interop.mjs --dry RELAY_HTTP_URL [TOKEN_JS]
//
// Full mode (a real permitsync relay and device):
//   a. connect to ws://RELAY/v1/sync?token=TOKEN_JS (join/peer handshake);
//   b. create a permit with repo.create(...) (its strings are Text objects);
//   c. wait until the relay's REST view has it (title "JS permit", status draft);
//   d. wait until the device node has it, then PATCH it there (title, ppe_add);
//   e. wait until the JS handle shows the device's edit (it came through the relay);
//   f. write an illegal draft -> active with the JS client and wait until the
//      relay's view lists it in `rejected` (invalid_transition), status still draft;
//   g. print {"ok": true, "documentId": ..., "uuid": ...} on stdout, exit 0.
// Any failure: the reason on stderr, exit 1. Progress goes to stderr.
//
// Dry mode (no REST; e.g. against js-relay.mjs): the same repo/handle calls,
// with a second JS Repo on its own WebSocket standing in for the device. It
// checks the JS-to-JS round trip through the server only.

import {
  asString,
  closeRepo,
  connectRepo,
  describe,
  documentIdToUuid,
  getJson,
  patchJson,
  redact,
  syncUrl,
  uuidToDocumentId,
  waitFor,
  withTimeout,
} from "./lib.mjs";

const USAGE = [
  "usage: node interop.mjs RELAY_HTTP_URL DEVICE_HTTP_URL TOKEN_JS TOKEN_DEVICE_REST",
  "       node interop.mjs --dry RELAY_HTTP_URL [TOKEN_JS]",
].join("\n");

const TIMEOUT_MS = Number(process.env.INTEROP_TIMEOUT_MS || 20_000);
const DEVICE_TITLE = "Edited on the Rust device";

const log = (msg) => console.error(`[interop] ${msg}`);

function fail(msg) {
  console.error(`interop: FAILED: ${msg}`);
  process.exit(1);
}

// The WebSocket client adapter rethrows socket errors other than ECONNREFUSED
// (e.g. a 401 on the upgrade) from an event handler: report them as failures.
process.on("uncaughtException", (e) => fail(`uncaught: ${e && e.stack ? e.stack : e}`));
process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e && e.stack ? e.stack : e}`));

function parseArgs(argv) {
  if (argv[0] === "--dry") {
    if (argv.length < 2 || argv.length > 3) fail(`bad arguments\n${USAGE}`);
    return { dry: true, relay: argv[1], tokenJs: argv[2] };
  }
  if (argv.length !== 4) fail(`bad arguments\n${USAGE}`);
  const [relay, device, tokenJs, tokenDevice] = argv;
  return { dry: false, relay, device, tokenJs, tokenDevice };
}

/** The permit as a JS app would write it: plain JS values only. */
function newPermit() {
  return {
    type: "permit",
    created_at: new Date(),
    created_by: "js-tablet",
    deleted: false,
    title: "JS permit",
    location: "Bay 4",
    work_type: "electrical",
    description: "Replace the breaker in panel 4B; written by an automerge-repo JS client.",
    ppe_requirements: { helmet: true },
    safety_checklist: { "lockout applied": false },
    status: "draft",
    gas_readings: {},
    photos: {},
  };
}

/** Steps a and b: connect, create the permit; the handle and its ids. */
async function connectAndCreate(wsUrl) {
  log(`a. connecting to ${redact(wsUrl)}`);
  const { repo } = await connectRepo(wsUrl, { timeoutMs: TIMEOUT_MS });
  log(`   handshake done, server peer ${repo.peers.join(", ")}`);

  const handle = repo.create(newPermit());
  const documentId = handle.documentId;
  const uuid = documentIdToUuid(documentId);
  if (uuidToDocumentId(uuid) !== documentId) fail(`id round trip failed: ${documentId} -> ${uuid}`);
  log(`b. created permit ${uuid} (document id ${documentId})`);
  return { repo, handle, documentId, uuid };
}

/** Step e: the JS handle shows the device's edit. */
async function waitForDeviceEdit(handle) {
  await waitFor(`the JS handle to show the device's edit (title "${DEVICE_TITLE}", ppe gloves)`, () => {
    const doc = handle.doc();
    const title = asString(doc.title);
    const gloves = doc.ppe_requirements ? doc.ppe_requirements.gloves : undefined;
    return {
      ok: title === DEVICE_TITLE && gloves === true,
      seen: `title ${JSON.stringify(title)}, ppe_requirements ${JSON.stringify(doc.ppe_requirements)}`,
    };
  }, { timeoutMs: TIMEOUT_MS });
}

/** Step f (client half): the illegal draft -> active, written the JS way. */
function writeIllegalActivation(handle) {
  handle.change((d) => {
    d.status = "active";
  });
  const raw = asString(handle.doc().status);
  if (raw !== "active") fail(`the JS doc should show the raw status "active", shows ${JSON.stringify(raw)}`);
}

async function full({ relay, device, tokenJs, tokenDevice }) {
  const { repo, handle, documentId, uuid } = await connectAndCreate(syncUrl(relay, tokenJs));
  const path = `/v1/entities/${uuid}`;

  // c. the relay has it, with the Text fields read as strings.
  log(`c. waiting for the relay's view of ${uuid}`);
  await waitFor("the relay's view of the JS permit (title \"JS permit\", status draft)", async () => {
    const res = await getJson(relay, path, tokenJs);
    const f = res.json && res.json.fields;
    return {
      ok: res.status === 200 && f && f.title === "JS permit" && f.status === "draft",
      seen: describe(res),
    };
  }, { timeoutMs: TIMEOUT_MS });

  // d. the device pulled it from the relay; edit it there.
  log(`d. waiting for the device node to have ${uuid}`);
  await waitFor("the device node to have the JS permit", async () => {
    const res = await getJson(device, path, tokenDevice);
    return { ok: res.status === 200, seen: describe(res) };
  }, { timeoutMs: TIMEOUT_MS });
  const patched = await patchJson(device, path, tokenDevice, { title: DEVICE_TITLE, ppe_add: ["gloves"] });
  if (patched.status !== 200) fail(`PATCH ${path} on the device: ${describe(patched)}`);
  log(`   patched on the device: title "${DEVICE_TITLE}", ppe_add gloves`);

  // e. the edit reaches the JS client through the relay.
  log("e. waiting for the device's edit in the JS handle");
  await waitForDeviceEdit(handle);

  // f. an illegal transition from the JS client becomes a rejected no-op.
  log("f. writing draft -> active from the JS client");
  writeIllegalActivation(handle);
  await waitFor("the relay's view to reject the JS client's draft -> active", async () => {
    const res = await getJson(relay, path, tokenJs);
    const v = res.json;
    const rejected = v && Array.isArray(v.rejected) ? v.rejected : [];
    const hit = rejected.some((r) => r.field === "status" && r.reason === "invalid_transition");
    return {
      ok: res.status === 200 && hit && v.fields && v.fields.status === "draft",
      seen: describe(res),
    };
  }, { timeoutMs: TIMEOUT_MS });

  await closeRepo(repo);
  return { documentId, uuid };
}

async function dry({ relay, tokenJs }) {
  const wsUrl = syncUrl(relay, tokenJs);
  const { repo, handle, documentId, uuid } = await connectAndCreate(wsUrl);

  // c'. a second, independent client (own Repo, own socket) finds the document
  // through the server: the stand-in for the relay and the device.
  log("c. (dry) a second JS client finds the permit through the server");
  const { repo: other } = await connectRepo(wsUrl, { timeoutMs: TIMEOUT_MS });
  const otherHandle = await waitFor("the second client to find the permit", async () => {
    // A find that races the creator's first sync gets doc-unavailable; retry.
    const h = await withTimeout("repo.find", other.find(handle.url), 5_000);
    const doc = h.doc();
    return {
      ok: asString(doc.title) === "JS permit" && asString(doc.status) === "draft",
      value: h,
      seen: `title ${JSON.stringify(doc.title)}, status ${JSON.stringify(doc.status)}`,
    };
  }, { timeoutMs: TIMEOUT_MS });
  const seenDoc = otherHandle.doc();
  if (typeof seenDoc.title !== "string") fail(`title should read as a string (Text), got ${typeof seenDoc.title}`);
  if (!(seenDoc.created_at instanceof Date)) fail("created_at should read back as a Date (timestamp)");

  // d'. the second client makes the edit the device's PATCH would make.
  log("d. (dry) the second client edits title and adds gloves");
  otherHandle.change((d) => {
    d.title = DEVICE_TITLE;
    d.ppe_requirements.gloves = true;
  });

  // e. the edit reaches the first client through the server.
  log("e. waiting for the second client's edit in the first client's handle");
  await waitForDeviceEdit(handle);

  // f. the first client's illegal transition reaches the second client raw
  // (the JS server has no policies; only the permitsync view rejects it).
  log("f. writing draft -> active from the first client");
  writeIllegalActivation(handle);
  await waitFor("the second client to see the raw status \"active\"", () => {
    const status = asString(otherHandle.doc().status);
    return { ok: status === "active", seen: `status ${JSON.stringify(status)}` };
  }, { timeoutMs: TIMEOUT_MS });

  await closeRepo(other);
  await closeRepo(repo);
  return { documentId, uuid };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const result = args.dry ? await dry(args) : await full(args);
  console.log(JSON.stringify({ ok: true, ...(args.dry ? { dry: true } : {}), ...result }));
  process.exit(0);
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
