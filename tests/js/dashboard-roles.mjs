// The workflow buttons follow the token's roles: Debian's Chromium driven by
// playwright-core (see tests/dashboard_roles.rs for the node before and after).
//
//   node tests/js/dashboard-roles.mjs BASE_URL PERFORMER_TOKEN ISSUER_TOKEN ARTIFACT_DIR PERMIT_ID
//
//  1. the performer opens the draft PERMIT_ID: "Submit for approval" and no
//     "Cancel permit" (an issuer's move), with the hint naming the role;
//     submits it; on the submitted permit: "Return to draft", no "Approve",
//     no "Cancel permit";
//  2. the issuer, in a second browser: "Approve", "Return to draft" and
//     "Cancel permit"; approves; then sees "Activate (issue permit)";
//  3. the performer's page, live: no move on the approved permit, and the
//     page says the role allows none;
//  4. print {"ok": true} on stdout.
//
// Screenshots: ARTIFACT_DIR/roles-*.png (roles-failure.png on failure).

import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

import { openPermit } from "./dashboard-lib.mjs";

const [baseUrl, performer, issuer, artifactDir, permitId] = process.argv.slice(2);
if (!baseUrl || !performer || !issuer || !artifactDir || !permitId) {
  console.error("usage: node dashboard-roles.mjs BASE_URL PERFORMER_TOKEN ISSUER_TOKEN ARTIFACT_DIR PERMIT_ID");
  process.exit(2);
}

const log = (...args) => console.error("roles:", ...args);
const shot = (page, name) => page.screenshot({ path: join(artifactDir, name), fullPage: true });
const check = (ok, what) => {
  if (!ok) throw new Error(what);
};

function open(profiles, contexts, pageErrors, secret) {
  return openPermit(baseUrl, permitId, secret, { profiles, contexts, pageErrors });
}

/** The moves the workflow panel offers, as `data-to` values. */
async function offered(page) {
  return page.locator('[data-testid="transition"]').evaluateAll((bs) => bs.map((b) => b.dataset.to));
}

async function status(page, label) {
  await page.getByTestId("permit-status").getByText(label, { exact: true }).waitFor();
}

async function main() {
  mkdirSync(artifactDir, { recursive: true });
  const profiles = [];
  const contexts = [];
  const pageErrors = [];
  let page;
  try {
    // the performer: submits, and is offered no issuer's move
    page = await open(profiles, contexts, pageErrors, performer);
    await status(page, "Draft");
    await page.locator('[data-testid="transition"][data-to="submitted"]').waitFor();
    let moves = await offered(page);
    check(JSON.stringify(moves) === '["submitted"]', `the performer's moves on a draft: ${moves}`);
    await page.getByTestId("roles-hint").getByText("performer").waitFor();
    await page.getByRole("button", { name: "Submit for approval" }).click();
    await status(page, "Submitted");
    await page.locator('[data-testid="transition"][data-to="draft"]').waitFor();
    moves = await offered(page);
    check(!moves.includes("approved"), `an Approve button for a performer: ${moves}`);
    check(!moves.includes("cancelled"), `a Cancel button for a performer: ${moves}`);
    check(await page.getByRole("button", { name: "Approve" }).count() === 0, "an Approve button for a performer");
    await shot(page, "roles-performer.png");
    log("performer: submitted; no Approve, no Cancel");

    // the issuer: approves
    const desk = await open(profiles, contexts, pageErrors, issuer);
    await status(desk, "Submitted");
    await desk.getByRole("button", { name: "Approve" }).waitFor();
    moves = await offered(desk);
    check(JSON.stringify([...moves].sort()) === '["approved","cancelled","draft"]',
      `the issuer's moves on a submitted permit: ${moves}`);
    check(await desk.getByTestId("roles-hint").count() === 0, "a roles hint for an issuer");
    await desk.getByRole("button", { name: "Approve" }).click();
    await status(desk, "Approved");
    await desk.getByRole("button", { name: "Activate (issue permit)" }).waitFor();
    await shot(desk, "roles-issuer.png");
    log("issuer: Approve offered and pressed");

    // the performer's page follows, live: nothing its role allows now
    await status(page, "Approved");
    await page.getByTestId("no-moves").getByText("performer").waitFor();
    check(await page.locator('[data-testid="transition"]').count() === 0,
      "a move offered to a performer on an approved permit");
    await shot(page, "roles-performer-after.png");
    log("performer: no move on the approved permit");

    if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join("; ")}`);
    console.log(JSON.stringify({ ok: true }));
  } catch (e) {
    if (page) await shot(page, "roles-failure.png").catch(() => {});
    const extra = pageErrors.length ? ` (page errors: ${pageErrors.join("; ")})` : "";
    throw new Error(`${e.message || e}${extra}`);
  } finally {
    for (const c of contexts) await c.close().catch(() => {});
    for (const p of profiles) rmSync(p, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`roles: FAILED: ${e.message || e}`);
    process.exit(1);
  },
);
