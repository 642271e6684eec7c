// A site supervisor runs the site from the dashboard: Debian's Chromium driven
// by playwright-core (see tests/dashboard_operate.rs for the scenario the node
// holds).
//
//   node tests/js/dashboard-operate.mjs BASE_URL TOKEN READ_ONLY_TOKEN ARTIFACT_DIR PLAN_JSON
//
// PLAN_JSON: {total, alarm_permit, interlock_permit, interlock_point,
// searches: [{q, count, title?}], cli, tablet, sync_url}.
//  1. sign in; the overview is paged by the node: 50 cards a page, Next and
//     Previous walk every permit once;
//  2. searches (description, location, work type) and the status chip;
//  3. `permitsync sync` of the tablet's store merges an out-of-range H2S
//     reading and an unverified isolation point into the active permit: the
//     red alarm band, the navigation count and the card show it without a
//     reload, named by gas and description (no UUID);
//  4. on the permit: a reading entered in the gas form and the isolation point
//     verified with its buttons clear the alarms, live;
//  5. "Activate" on the interlocked permit is refused with the node's reason
//     (naming the isolation point); verified, it activates;
//  6. the printed permit (print media): the sheet only, with authorisations
//     and signature lines;
//  7. a permit created with the form, then submitted;
//  8. a read-only token: no write buttons anywhere;
//  9. print {"ok": true, "created": ID} on stdout.
//
// Screenshots: ARTIFACT_DIR/operate-*.png (operate-failure.png on failure).
// Every wait is bounded (DASHBOARD_TIMEOUT_MS, default 20000).

import { execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { chromium } from "playwright-core";

const [baseUrl, token, roToken, artifactDir, planJson] = process.argv.slice(2);
if (!baseUrl || !token || !roToken || !artifactDir || !planJson) {
  console.error("usage: node dashboard-operate.mjs BASE_URL TOKEN READ_ONLY_TOKEN ARTIFACT_DIR PLAN_JSON");
  process.exit(2);
}
const plan = JSON.parse(planJson);
const TIMEOUT = Number(process.env.DASHBOARD_TIMEOUT_MS || 20_000);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PAGE = 50;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

const log = (...args) => console.error("operate:", ...args);
const shot = (page, name) => page.screenshot({ path: join(artifactDir, name), fullPage: true });
const check = (ok, what) => {
  if (!ok) throw new Error(what);
};

async function browser(profile) {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1180, height: 900 },
    timeout: TIMEOUT,
  });
  context.setDefaultTimeout(TIMEOUT);
  return context;
}

async function signIn(page, secret) {
  await page.goto(`${baseUrl}/`);
  await page.getByTestId("token-form").waitFor();
  await page.getByLabel("Access token").fill(secret);
  await page.getByRole("button", { name: "Connect" }).click();
  await page.locator('#live[data-state="live"]').waitFor();
}

/** Wait until the overview says "Permits A–B of N". */
async function pageInfo(page, text) {
  await page.waitForFunction(
    (want) => document.querySelector('[data-testid="page-info"]')?.textContent === want,
    text,
  );
}

const cardIds = (page) => page.getByTestId("permit-card")
  .evaluateAll((els) => els.map((el) => el.dataset.id));

/** Open a route without reloading the page. */
async function go(page, hash) {
  await page.evaluate((h) => {
    location.hash = h;
  }, hash);
}

async function isolationStep(page, description, to) {
  const point = page.locator('[data-testid="isolation-point"]').filter({ hasText: description });
  await point.locator(`[data-testid="isolation-action"][data-to="${to}"]`).click();
  await page.locator(`[data-testid="isolation-point"][data-status="${to}"]`)
    .filter({ hasText: description }).waitFor();
}

async function main() {
  mkdirSync(artifactDir, { recursive: true });
  const profiles = [];
  const contexts = [];
  const pageErrors = [];
  let page;
  const open = async () => {
    const profile = mkdtempSync(join(tmpdir(), "permitsync-chromium-"));
    profiles.push(profile);
    const context = await browser(profile);
    contexts.push(context);
    const p = context.pages()[0] || (await context.newPage());
    p.on("pageerror", (e) => pageErrors.push(String(e)));
    p.on("console", (m) => {
      if (m.type() === "error") log(`browser console: ${m.text()}`);
    });
    return p;
  };
  try {
    page = await open();
    await signIn(page, token);
    // the page must never reload from here on (live updates only)
    await page.evaluate(() => {
      window.notReloaded = true;
    });

    // 1. pages of 50 over every permit
    const pages = Math.ceil(plan.total / PAGE);
    await pageInfo(page, `Permits 1–${PAGE} of ${plan.total}`);
    let ids = await cardIds(page);
    check(ids.length === PAGE, `page 1 shows ${ids.length} cards, not ${PAGE}`);
    await page.getByText(`Page 1 of ${pages}`).waitFor();
    await shot(page, "operate-overview.png");
    const seen = new Set(ids);
    for (let n = 2; n <= pages; n += 1) {
      await page.getByTestId("page-next").click();
      const last = Math.min(n * PAGE, plan.total);
      await pageInfo(page, `Permits ${(n - 1) * PAGE + 1}–${last} of ${plan.total}`);
      ids = await cardIds(page);
      check(ids.length === last - (n - 1) * PAGE, `page ${n} shows ${ids.length} cards`);
      for (const id of ids) {
        check(!seen.has(id), `permit ${id} on two pages`);
        seen.add(id);
      }
    }
    check(seen.size === plan.total, `the pages showed ${seen.size} permits, not ${plan.total}`);
    check(await page.getByTestId("page-next").isDisabled(), "Next is enabled on the last page");
    await page.getByTestId("page-prev").click();
    await pageInfo(page, `Permits ${(pages - 2) * PAGE + 1}–${(pages - 1) * PAGE} of ${plan.total}`);
    log(`${pages} pages of ${PAGE}: every permit once`);

    // 2. searches on the node, and the status chip
    const search = page.locator("#filter");
    for (const s of plan.searches) {
      await search.fill(s.q);
      await pageInfo(page, `Permits 1–${Math.min(s.count, PAGE)} of ${s.count}`);
      if (s.title) {
        const titles = await page.locator('[data-testid="permit-card"] .card-title').allTextContents();
        check(titles.includes(s.title), `search ${s.q}: ${JSON.stringify(titles)} lacks ${s.title}`);
      }
      if (s.q === "flange") await shot(page, "operate-search.png");
      log(`search ${JSON.stringify(s.q)}: ${s.count}`);
    }
    await search.fill("");
    await pageInfo(page, `Permits 1–${PAGE} of ${plan.total}`);
    await page.getByTestId("chip-approved").click();
    await pageInfo(page, "Permits 1–1 of 1");
    check((await cardIds(page))[0] === plan.interlock_permit, "the approved chip shows the approved permit");
    await page.getByTestId("chip-all").click();
    await pageInfo(page, `Permits 1–${PAGE} of ${plan.total}`);

    // 3. a tablet's offline changes merge in: alarms, live
    await page.getByTestId("no-alarms").waitFor();
    check(await page.locator("#alarm-count").isHidden(), "an alarm count before any alarm");
    log("syncing the tablet (an out-of-range H2S reading, an unverified isolation point)");
    await promisify(execFile)(plan.cli, ["--data", plan.tablet, "sync", plan.sync_url, "--timeout", "60"],
      { timeout: 90_000 });
    const band = page.getByTestId("alarm-band");
    const entry = band.locator(`[data-testid="alarm-permit"][data-id="${plan.alarm_permit}"]`);
    await entry.waitFor();
    const gas = entry.locator('[data-testid="alarm"][data-rule="gas_reading_out_of_range"]');
    await gas.waitFor();
    const gasText = await gas.textContent();
    check(gasText === "Gas H2S: latest reading 25 ppm, allowed 0–10 ppm", `gas alarm says ${gasText}`);
    const iso = entry.locator('[data-testid="alarm"][data-rule="isolation_not_verified"]');
    const isoText = await iso.textContent();
    check(isoText === 'Isolation point "Standby pump breaker" is assigned, not verified',
      `isolation alarm says ${isoText}`);
    const bandText = await band.textContent();
    check(!UUID.test(bandText), `the alarm band shows an id: ${bandText}`);
    await page.waitForFunction(() => document.querySelector("#alarm-count")?.textContent === "1"
      && !document.querySelector("#alarm-count").hidden);
    await page.locator(`[data-testid="permit-card"][data-id="${plan.alarm_permit}"][data-alarms="2"]`).waitFor();
    await page.waitForFunction(() =>
      document.querySelector('[data-testid="chip-alarm"] .chip-count')?.textContent === "1");
    check(await page.evaluate(() => window.notReloaded === true), "the page reloaded");
    await shot(page, "operate-alarm.png");
    log("alarms shown live: band, navigation count, card, chip");

    // 4. resolved from the permit's page: a gas test and the isolation steps
    await entry.getByRole("link").click();
    await page.getByTestId("permit-title").waitFor();
    const violations = page.getByTestId("violations");
    await violations.getByText('"Standby pump breaker"').waitFor();
    check(!UUID.test(await violations.textContent()), "the permit's alarm panel shows an id");
    const rows = await page.getByTestId("gas-reading").count();
    await page.locator("#gas-gas").fill("H2S");
    await page.locator("#gas-value").fill("3");
    await page.locator("#gas-unit").fill("ppm");
    await page.locator("#gas-min").fill("0");
    await page.locator("#gas-max").fill("10");
    await page.getByRole("button", { name: "Record reading" }).click();
    await page.waitForFunction((n) =>
      document.querySelectorAll('[data-testid="gas-reading"]').length === n + 1, rows);
    await violations.locator('[data-rule="gas_reading_out_of_range"]').waitFor({ state: "detached" });
    log("the gas test entered in the page cleared the gas alarm");
    await isolationStep(page, "Standby pump breaker", "isolated");
    await isolationStep(page, "Standby pump breaker", "verified");
    await violations.waitFor({ state: "detached" });
    await page.locator("#alarm-count").waitFor({ state: "hidden" });
    await page.getByRole("link", { name: "← All permits" }).click();
    await page.getByTestId("no-alarms").waitFor();
    check(await page.evaluate(() => window.notReloaded === true), "the page reloaded");
    await page.locator("#toast").waitFor({ state: "hidden" });
    await shot(page, "operate-cleared.png");
    log("alarms cleared live");

    // 5. an interlock refuses activation, named; verified, it activates
    await go(page, `#/permit/${plan.interlock_permit}`);
    await page.getByTestId("permit-status").getByText("Approved").waitFor();
    await page.locator('[data-testid="transition"][data-to="active"]').click();
    const refusal = page.getByTestId("action-error");
    await refusal.waitFor();
    const refused = await refusal.textContent();
    check(refused.includes(`isolation point "${plan.interlock_point}" is assigned, not verified`),
      `the refusal says ${refused}`);
    check(refused.includes("Interlock"), `the refusal is not called an interlock: ${refused}`);
    check(await page.getByTestId("permit-status").textContent() === "Approved", "refused, yet moved");
    await shot(page, "operate-refusal.png");
    await isolationStep(page, plan.interlock_point, "isolated");
    await isolationStep(page, plan.interlock_point, "verified");
    await page.locator('[data-testid="transition"][data-to="active"]').click();
    await page.getByTestId("permit-status").getByText("Active").waitFor();
    await refusal.waitFor({ state: "hidden" });
    await page.locator('[data-testid="transition"][data-to="suspended"]').waitFor();
    log("activation refused by the interlock, then done once the valve was verified");

    // 6. the printed permit
    await page.emulateMedia({ media: "print" });
    const sheet = page.getByTestId("print-sheet");
    await sheet.waitFor({ state: "visible" });
    check(await page.locator(".topbar").isHidden(), "the top bar prints");
    check(await page.getByTestId("actions").isHidden(), "the workflow buttons print");
    const printed = await sheet.textContent();
    for (const want of ["Permit to Work", "Replace pump seal P-201", "Pump drained", "safety glasses",
      plan.interlock_point, "Issued (activated)", "Approved", "supervisor", "Issuing authority"]) {
      check(printed.includes(want), `the printed permit lacks ${JSON.stringify(want)}`);
    }
    const signatureRows = await page.locator('[data-testid="print-signatures"] tbody tr').count();
    check(signatureRows === 4, `${signatureRows} signature lines`);
    await shot(page, "operate-print.png");
    await page.emulateMedia({ media: "screen" });
    check(await sheet.isHidden(), "the print sheet shows on screen");
    log("print view: the sheet only, with authorisations and signature lines");

    // 7. a permit from the form, then submitted
    await go(page, "#/permits");
    await page.getByTestId("new-permit").click();
    const form = page.getByTestId("permit-form");
    await form.waitFor();
    await page.getByLabel("Title").fill("Excavate cable trench by substation S-2");
    await page.getByLabel("Location").fill("Substation S-2");
    await page.getByLabel("Work type").fill("excavation");
    await page.getByLabel("Description").fill("Hand-dig a 600 mm trench for the new feeder cable.");
    await page.getByLabel("hard hat").check();
    await page.getByLabel("safety boots").check();
    await page.getByLabel("Other PPE").fill("ear defenders");
    await page.getByLabel("Safety checklist").fill("Cable locator sweep done\nSpoil heap 1 m from edge\n");
    await page.getByRole("button", { name: "Create permit" }).click();
    await page.getByTestId("permit-title").getByText("Excavate cable trench by substation S-2").waitFor();
    await page.getByTestId("permit-status").getByText("Draft").waitFor();
    const created = await page.getByTestId("permit").getAttribute("data-id");
    await page.locator(".chips li").getByText("ear defenders").waitFor();
    await page.getByText("0 of 2 checked").waitFor();
    await page.locator('[data-testid="transition"][data-to="submitted"]').click();
    await page.getByTestId("permit-status").getByText("Submitted").waitFor();
    await page.locator("#toast").waitFor({ state: "hidden" });
    await shot(page, "operate-created.png");
    await go(page, "#/permits");
    await pageInfo(page, `Permits 1–${PAGE} of ${plan.total + 1}`);
    log(`created ${created} with the form and submitted it`);
    check(await page.evaluate(() => window.notReloaded === true), "the page reloaded");

    // 8. a read-only token sees no write buttons
    const screen = await open();
    await signIn(screen, roToken);
    await pageInfo(screen, `Permits 1–${PAGE} of ${plan.total + 1}`);
    check(await screen.locator("[data-write]").count() === 0, "write controls on the overview");
    check(await screen.getByTestId("new-permit").count() === 0, "a New permit button");
    await go(screen, `#/permit/${plan.interlock_permit}`);
    await screen.getByTestId("permit-status").getByText("Active").waitFor();
    await screen.getByTestId("isolation-point").first().waitFor();
    const buttons = await screen.locator('main button:not([data-testid="print"])').count();
    check(buttons === 0, `${buttons} buttons on a permit for a read-only token`);
    check(await screen.getByTestId("gas-form").count() === 0, "a gas form for a read-only token");
    await shot(screen, "operate-read-only.png");
    await go(screen, "#/new");
    await screen.getByText("This token is read-only: it cannot create permits.").waitFor();
    check(await screen.locator("[data-write]").count() === 0, "write controls on #/new");
    log("read-only token: no write buttons");

    if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join("; ")}`);
    console.log(JSON.stringify({ ok: true, created }));
  } catch (e) {
    if (page) {
      await page.emulateMedia({ media: "screen" }).catch(() => {});
      await shot(page, "operate-failure.png").catch(() => {});
    }
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
    console.error(`operate: FAILED: ${e.message || e}`);
    process.exit(1);
  },
);
