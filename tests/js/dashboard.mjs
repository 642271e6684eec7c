// The dashboard in a real browser: Debian's Chromium driven by playwright-core.
//
//   node tests/js/dashboard.mjs BASE_URL TOKEN PERMIT_ID ARTIFACT_DIR [AUTHORS_JSON] [AUTHORSHIP_JSON]
//
// Against a permitsync node that needs tokens and holds permit PERMIT_ID with
// a conflict on `title`:
//  1. open BASE_URL/, expect the token prompt (the API answers 401), enter TOKEN;
//  2. wait for the overview to list the permit;
//  3. open Conflicts, find the title conflict, check that each version names
//     the device that wrote it (AUTHORS_JSON: {"value": "device"}), click
//     "Keep this value" on the version that is not shown now, and wait until
//     the page says there are no conflicts;
//  4. open the permit: its title is the chosen value, the out-of-range gas
//     reading is flagged, its isolation point is listed; with AUTHORSHIP_JSON
//     ({approved, created, author, claimed}), the page and the printed sheet
//     say who approved ("J. Smith on tablet-3, signed") and who created it,
//     and the history shows a change's verified author (`author`) apart from
//     the device its note claims (`claimed`);
//  5. PATCH the permit's location over REST (outside the browser) and wait for
//     the open page to show it: live updates over /v1/events;
//  6. print {"ok": true, "chosen": ..., "location": ...} on stdout.
//
// Screenshots go to ARTIFACT_DIR (dashboard-overview.png,
// dashboard-before.png, dashboard-after.png, dashboard.png, and
// dashboard-failure.png on failure). Progress goes to stderr; a failure prints
// `dashboard: FAILED: <reason>` and exits 1. Every wait is bounded
// (DASHBOARD_TIMEOUT_MS, default 20000). CHROMIUM overrides /usr/bin/chromium.

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

const [baseUrl, token, permitId, artifactDir, authorsJson, authorshipJson] = process.argv.slice(2);
const authors = authorsJson ? JSON.parse(authorsJson) : null;
const authorship = authorshipJson ? JSON.parse(authorshipJson) : null;
if (!baseUrl || !token || !permitId || !artifactDir) {
  console.error("usage: node dashboard.mjs BASE_URL TOKEN PERMIT_ID ARTIFACT_DIR");
  process.exit(2);
}
const TIMEOUT = Number(process.env.DASHBOARD_TIMEOUT_MS || 20_000);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const NEW_LOCATION = "Pump house 2, north bay (moved live)";

const log = (...args) => console.error("dashboard:", ...args);

/** PATCH a permit over REST, outside the browser. */
async function patch(id, body) {
  const res = await fetch(new URL(`/v1/entities/${id}`, baseUrl), {
    method: "PATCH",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  if (!res.ok) throw new Error(`PATCH ${id}: ${res.status} ${await res.text()}`);
}

/** The text of the first element `selector` matches (waiting for it). */
async function textOf(page, selector) {
  const el = page.locator(selector).first();
  await el.waitFor({ state: "attached" });
  return (await el.textContent()) || "";
}

/** Who approved and created the permit, on the page, the sheet and in history. */
async function checkAuthorship(page, want) {
  const expect = (where, text, part) => {
    if (!text.includes(part)) throw new Error(`${where} says ${JSON.stringify(text)}, expected ${JSON.stringify(part)}`);
  };
  expect("the approval", await textOf(page, '[data-testid="authorship-approved"]'), want.approved);
  expect("the creation", await textOf(page, '[data-testid="authorship-created"]'), want.created);
  expect("the printed approval",
    await textOf(page, '[data-testid="print-authorisations"] tr[data-step="approved"]'), want.approved);
  const entry = page.locator('[data-testid="history"] > li')
    .filter({ has: page.locator(`[data-testid="history-claim"][data-device="${want.claimed}"]`) });
  const author = entry.locator('[data-testid="history-author"]').first();
  await author.waitFor();
  const device = await author.getAttribute("data-device");
  const verification = await author.getAttribute("data-verification");
  if (device !== want.author || verification !== "signed") {
    throw new Error(`the change claiming ${want.claimed} shows author ${device} (${verification}), ` +
      `expected ${want.author} (signed)`);
  }
  log(`page, sheet and history say: approved by ${want.approved}; ${want.author} wrote what claims ${want.claimed}`);
}

async function main() {
  mkdirSync(artifactDir, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), "permitsync-chromium-"));
  const pageErrors = [];
  let context;
  let page;
  try {
    context = await chromium.launchPersistentContext(profile, {
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
    page = context.pages()[0] || (await context.newPage());
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() === "error") log(`browser console: ${m.text()}`);
    });

    // 1. the token prompt
    log(`opening ${baseUrl}/`);
    await page.goto(`${baseUrl}/`);
    const form = page.getByTestId("token-form");
    await form.waitFor();
    await page.getByLabel("Access token").fill(token);
    await page.getByRole("button", { name: "Connect" }).click();

    // 2. the overview lists the permit, and live updates are on
    const card = page.locator(`[data-testid="permit-card"][data-id="${permitId}"]`);
    await card.waitFor();
    await page.locator('#live[data-state="live"]').waitFor();
    log("overview shows the permit; live updates connected");
    await page.screenshot({ path: join(artifactDir, "dashboard-overview.png"), fullPage: true });

    // 3. resolve the title conflict from the Conflicts page
    await page.getByRole("link", { name: /Conflicts/ }).click();
    const conflict = page.locator(
      `[data-testid="conflict"][data-entity="${permitId}"][data-field="title"]`,
    );
    await conflict.waitFor();
    const values = await conflict.getByTestId("conflict-value").evaluateAll((els) =>
      els.map((el) => ({
        value: el.dataset.value,
        winner: el.dataset.winner === "true",
        author: el.querySelector('[data-testid="conflict-author"]')?.dataset.device || null,
      })));
    log(`conflict values: ${JSON.stringify(values)}`);
    if (authors) {
      for (const v of values) {
        if (v.author !== authors[v.value]) {
          throw new Error(`version ${JSON.stringify(v.value)} shows author ${v.author}, ` +
            `expected ${authors[v.value]}`);
        }
      }
      log("each version names the device that wrote it");
    }
    if (values.length < 2) throw new Error(`expected 2+ versions, saw ${JSON.stringify(values)}`);
    const pick = values.find((v) => !v.winner);
    if (!pick) throw new Error("every version is marked as the one shown");
    await page.screenshot({ path: join(artifactDir, "dashboard-before.png"), fullPage: true });
    await conflict
      .locator('[data-testid="conflict-value"][data-winner="false"]')
      .first()
      .getByRole("button", { name: "Keep this value" })
      .click();
    log(`kept ${JSON.stringify(pick.value)}; waiting for the conflict to go`);
    await conflict.waitFor({ state: "detached" });
    await page.getByTestId("no-conflicts").waitFor();
    await page.screenshot({ path: join(artifactDir, "dashboard-after.png"), fullPage: true });

    // 4. the permit shows the chosen title and its details
    await page.goto(`${baseUrl}/#/permit/${permitId}`);
    const title = page.getByTestId("permit-title");
    await title.waitFor();
    await page.waitForFunction(
      (want) => document.querySelector('[data-testid="permit-title"]')?.textContent === want,
      pick.value,
    );
    await page.locator('[data-testid="gas-reading"][data-out-of-range="true"]').first().waitFor();
    await page.getByTestId("isolation-point").first().waitFor();
    await page.locator('#live[data-state="live"]').waitFor();
    log("permit page shows the chosen title, the flagged gas reading and the isolation point");
    if (authorship) await checkAuthorship(page, authorship);

    // 5. a write elsewhere shows up without a reload
    await patch(permitId, { location: NEW_LOCATION });
    await page.getByText(NEW_LOCATION).first().waitFor();
    log("a REST write elsewhere reached the open page live");
    await page.locator("#toast").waitFor({ state: "hidden" });
    await page.screenshot({ path: join(artifactDir, "dashboard.png"), fullPage: true });

    if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join("; ")}`);
    console.log(JSON.stringify({ ok: true, chosen: pick.value, values, location: NEW_LOCATION }));
  } catch (e) {
    if (page) {
      await page
        .screenshot({ path: join(artifactDir, "dashboard-failure.png"), fullPage: true })
        .catch(() => {});
    }
    const extra = pageErrors.length ? ` (page errors: ${pageErrors.join("; ")})` : "";
    throw new Error(`${e.message || e}${extra}`);
  } finally {
    await context?.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`dashboard: FAILED: ${e.message || e}`);
    process.exit(1);
  },
);
