// A supervisor adds a permit's isolation point and its closeout from the
// dashboard: Debian's Chromium driven by playwright-core (see
// tests/dashboard_children.rs for what the node holds before and after).
//
//   node tests/js/dashboard-children.mjs BASE_URL TOKEN READ_ONLY_TOKEN ARTIFACT_DIR PERMIT_ID
//
//  1. sign in and open the approved permit PERMIT_ID;
//  2. an isolation point added with the form: an empty description is
//     refused in the page; then "Gearbox coupling guard", locks
//     "LOCK-21, LOCK-22"; it appears, and activating the permit is refused
//     naming it; it is isolated and verified with its buttons; the permit is
//     activated, then completed;
//  3. the closeout started with the form (two checks, notes); both checks
//     ticked on the page, then "Mark closeout completed";
//  4. a read-only token sees neither form;
//  5. print {"ok": true} on stdout.
//
// Screenshots: ARTIFACT_DIR/children-*.png (children-failure.png on failure).

import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

import { openPermit } from "./dashboard-lib.mjs";

const [baseUrl, token, roToken, artifactDir, permitId] = process.argv.slice(2);
if (!baseUrl || !token || !roToken || !artifactDir || !permitId) {
  console.error("usage: node dashboard-children.mjs BASE_URL TOKEN READ_ONLY_TOKEN ARTIFACT_DIR PERMIT_ID");
  process.exit(2);
}

const log = (...args) => console.error("children:", ...args);
const shot = (page, name) => page.screenshot({ path: join(artifactDir, name), fullPage: true });
const check = (ok, what) => {
  if (!ok) throw new Error(what);
};

function open(profiles, contexts, pageErrors, secret) {
  return openPermit(baseUrl, permitId, secret, { profiles, contexts, pageErrors });
}

async function isolationStep(page, description, to) {
  const point = page.getByTestId("isolation-point").filter({ hasText: description });
  await point.locator(`[data-testid="isolation-action"][data-to="${to}"]`).click();
  await page.locator(`[data-testid="isolation-point"][data-status="${to}"]`)
    .filter({ hasText: description }).waitFor();
}

async function transition(page, to, label) {
  await page.locator(`[data-testid="transition"][data-to="${to}"]`).click();
  await page.getByTestId("permit-status").getByText(label, { exact: true }).waitFor();
}

async function main() {
  mkdirSync(artifactDir, { recursive: true });
  const profiles = [];
  const contexts = [];
  const pageErrors = [];
  let page;
  try {
    page = await open(profiles, contexts, pageErrors, token);
    check(await page.getByTestId("isolation-point").count() === 0, "an isolation point before the form");

    // the isolation point, from the form
    const form = page.getByTestId("isolation-form");
    await form.getByRole("button", { name: "Add isolation point" }).click();
    await form.getByRole("alert").getByText("Describe the isolation point").waitFor();
    await form.getByLabel("What is isolated").fill("Gearbox coupling guard");
    await form.getByLabel("Lock ids (comma-separated)").fill("LOCK-21, LOCK-22, LOCK-21");
    await form.getByRole("button", { name: "Add isolation point" }).click();
    const point = page.getByTestId("isolation-point").filter({ hasText: "Gearbox coupling guard" });
    await point.waitFor();
    await point.getByText("Locks: LOCK-21, LOCK-22").waitFor();
    check(await point.getAttribute("data-status") === "assigned", "a new point is assigned");
    await shot(page, "children-isolation.png");
    log("isolation point added from the form");
    // the new point holds the permit back until it is verified, named by its description
    await page.locator('[data-testid="transition"][data-to="active"]').click();
    await page.getByTestId("action-error").getByText("Gearbox coupling guard").waitFor();
    check(await page.getByTestId("permit-status").innerText() === "Approved", "activated over an assigned point");
    await isolationStep(page, "Gearbox coupling guard", "isolated");
    await isolationStep(page, "Gearbox coupling guard", "verified");
    await transition(page, "active", "Active");
    await transition(page, "completed", "Completed");
    log("verified, activated, completed");

    // the closeout, from the form
    const closeoutForm = page.getByTestId("closeout-form");
    await closeoutForm.getByLabel("Checklist (one item a line)")
      .fill("Guard refitted\n\nArea swept clear\n");
    await closeoutForm.getByLabel("Notes").fill("Coupling aligned, run test 10 min OK");
    await closeoutForm.getByRole("button", { name: "Start closeout" }).click();
    const closeout = page.getByTestId("closeout");
    await closeout.getByText("0 of 2 checked").waitFor();
    check(await closeout.getByTestId("closeout-complete").count() === 0,
      "Mark completed offered with open checks");
    for (const item of ["Guard refitted", "Area swept clear"]) {
      await closeout.locator(`[data-testid="tick"][data-item="${item}"]`).click();
      await closeout.locator(`[data-testid="tick"][data-item="${item}"]`).waitFor({ state: "detached" });
    }
    await closeout.getByText("2 of 2 checked").waitFor();
    await closeout.getByTestId("closeout-complete").click();
    await closeout.getByText("Completed", { exact: true }).waitFor();
    check(await page.getByTestId("closeout-form").count() === 0, "a second closeout form");
    await shot(page, "children-closeout.png");
    log("closeout started, checked and completed from the page");

    // a read-only token: no forms
    const screen = await open(profiles, contexts, pageErrors, roToken);
    await screen.getByTestId("isolation-point").first().waitFor();
    check(await screen.getByTestId("isolation-form").count() === 0, "an isolation form for a read-only token");
    check(await screen.getByTestId("closeout-form").count() === 0, "a closeout form for a read-only token");
    check(await screen.getByTestId("closeout-complete").count() === 0, "a complete button for a read-only token");
    log("read-only token: no forms");

    if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join("; ")}`);
    console.log(JSON.stringify({ ok: true }));
  } catch (e) {
    if (page) await shot(page, "children-failure.png").catch(() => {});
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
    console.error(`children: FAILED: ${e.message || e}`);
    process.exit(1);
  },
);
