#!/usr/bin/env node
// Roles check: an unmodified JavaScript automerge-repo client approves a
// submitted permit through a permitsync relay with its token. The relay
// attests the upload for the token's device and roles; whether the approval
// counts is the relay's view's business (checked by tests/identity_relay.rs).
//
//   node roles.mjs RELAY_HTTP_URL TOKEN PERMIT_UUID
//
// Connects with TOKEN, finds the permit, writes status "approved" the JS
// way, waits until the relay holds the change (its view's version grows),
// prints {"ok": true} and exits 0. Failure: the reason on stderr, exit 1.

import {
  asString,
  closeRepo,
  connectRepo,
  getJson,
  syncUrl,
  uuidToDocumentId,
  waitFor,
  withTimeout,
} from "./lib.mjs";

const TIMEOUT_MS = Number(process.env.INTEROP_TIMEOUT_MS || 20_000);
const log = (msg) => console.error(`[roles] ${msg}`);
function fail(msg) {
  console.error(`roles: FAILED: ${msg}`);
  process.exit(1);
}
process.on("uncaughtException", (e) => fail(`uncaught: ${e && e.stack ? e.stack : e}`));
process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e && e.stack ? e.stack : e}`));

async function main() {
  const [relay, token, uuid] = process.argv.slice(2);
  if (!uuid) fail("usage: node roles.mjs RELAY_HTTP_URL TOKEN PERMIT_UUID");
  const path = `/v1/entities/${uuid}`;
  const before = await getJson(relay, path, token);
  if (before.status !== 200) fail(`GET ${path}: ${before.status}`);
  const version = before.json.version;
  const { repo } = await connectRepo(syncUrl(relay, token), { timeoutMs: TIMEOUT_MS });
  const handle = await withTimeout("repo.find", repo.find(`automerge:${uuidToDocumentId(uuid)}`), TIMEOUT_MS);
  const status = asString(handle.doc().status);
  log(`found ${uuid}, status ${status}`);
  handle.change((d) => {
    d.status = "approved";
  });
  await waitFor("the relay to hold the approval", async () => {
    const res = await getJson(relay, path, token);
    return { ok: res.status === 200 && res.json.version > version, seen: `version ${res.json && res.json.version}` };
  }, { timeoutMs: TIMEOUT_MS });
  await closeRepo(repo);
  console.log(JSON.stringify({ ok: true }));
  process.exit(0);
}

main();
