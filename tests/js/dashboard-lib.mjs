// What the dashboard's browser tests share: Debian's Chromium driven by
// playwright-core, signed in with a token, on one permit's page.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

export const TIMEOUT = Number(process.env.DASHBOARD_TIMEOUT_MS || 20_000);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/**
 * A fresh browser profile signed in to the dashboard at `baseUrl` with
 * `secret`, on permit `permitId`'s page. The profile and context go into
 * `opened.profiles` and `opened.contexts` (for the caller to clean up), the
 * page's errors into `opened.pageErrors`.
 */
export async function openPermit(baseUrl, permitId, secret, opened) {
  const profile = mkdtempSync(join(tmpdir(), "permitsync-chromium-"));
  opened.profiles.push(profile);
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
  opened.contexts.push(context);
  const page = context.pages()[0] || await context.newPage();
  page.on("pageerror", (e) => opened.pageErrors.push(e.message));
  await page.goto(`${baseUrl}/`);
  await page.getByTestId("token-form").waitFor();
  await page.getByLabel("Access token").fill(secret);
  await page.getByRole("button", { name: "Connect" }).click();
  await page.locator('#live[data-state="live"]').waitFor();
  await page.evaluate((id) => {
    location.hash = `#/permit/${id}`;
  }, permitId);
  await page.getByTestId("permit").waitFor();
  return page;
}
