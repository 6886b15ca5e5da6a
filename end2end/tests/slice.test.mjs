// The first vertical slice through a real browser: add a client, see it listed, see its
// welcome draft arrive on the email dashboard; an invalid email is refused by name.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { chromium } from "playwright-core";

const baseUrl = process.env.BASE_URL;
const artifacts = process.env.ARTIFACTS;
let browser;
let page;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.ENGAGE_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
});

after(async () => {
  await browser?.close();
});

const unique = Date.now().toString(36);
const clientName = `Ada Testwright ${unique}`;
const clientEmail = `ada.testwright.${unique}@example.com`;

async function openClients() {
  await page.goto(`${baseUrl}/`);
  await page.waitForSelector("body[data-hydrated='true']", { timeout: 30_000 });
}

test("the clients page is server-rendered, then hydrated and interactive", async () => {
  const html = await (await fetch(`${baseUrl}/`)).text();
  assert.match(html, /<h1>Clients<\/h1>/, "the page is rendered on the server");
  await openClients();
  const rows = page.locator("table.clients tbody tr");
  await rows.first().waitFor();
  const before = await rows.count();
  assert.ok(before > 0, "demo clients are listed");
  // The filter works only once the page is hydrated: it runs in the browser.
  await page.fill("input.filter", "no client is called this");
  await page.waitForFunction(() => document.querySelectorAll("table.clients tbody tr").length === 0);
  await page.fill("input.filter", "");
  await page.waitForFunction((n) => document.querySelectorAll("table.clients tbody tr").length === n, before);
});

test("an invalid email is refused with the email field named, and nothing is created", async () => {
  await openClients();
  await page.fill("#client-name", "Nobody Invalid");
  await page.fill("#client-email", "nobody-at-example");
  await page.click("button[type='submit']");
  const error = page.locator("#email-error");
  await error.waitFor({ timeout: 15_000 });
  assert.match(await error.textContent(), /^Email: /);
  assert.equal(await page.locator("#client-email").getAttribute("aria-invalid"), "true");
  assert.match(await page.locator(".form-status").textContent(), /Nothing was saved/);
  // Reload from the server: no such client exists.
  await openClients();
  assert.equal(await page.locator("table.clients tbody tr", { hasText: "Nobody Invalid" }).count(), 0);
});

test("a new client is listed and its welcome draft appears on the email dashboard", async () => {
  await openClients();
  await page.fill("#client-name", clientName);
  await page.fill("#client-email", clientEmail);
  await page.selectOption("#client-stylist", { label: "Priya Raman" });
  await page.check("#client-opt-in");
  await page.click("button[type='submit']");
  await page.locator(".form-status", { hasText: `Added ${clientName}. Their welcome draft` }).waitFor({ timeout: 15_000 });
  const row = page.locator("table.clients tbody tr", { hasText: clientName });
  await row.waitFor({ timeout: 15_000 });
  assert.match(await row.textContent(), /Priya Raman/);
  // The score arrives through the pipeline; the list refreshes by itself.
  await row.locator(".band-steady").waitFor({ timeout: 30_000 });
  await page.screenshot({ path: join(artifacts, "clients.png"), fullPage: true });

  await page.goto(`${baseUrl}/emails`);
  await page.waitForSelector("body[data-hydrated='true']", { timeout: 30_000 });
  // The dashboard polls on its own: wait for the draft, no reloads, no fixed sleeps.
  const draft = page.locator("table.emails tbody tr", { hasText: clientName });
  await draft.waitFor({ timeout: 30_000 });
  const text = await draft.textContent();
  assert.match(text, /Welcome/);
  assert.match(text, /drafted/);
  assert.match(text, /template/);
  assert.match(text, /Ada/, "the subject or greeting uses the first name");
  await page.screenshot({ path: join(artifacts, "emails.png"), fullPage: true });

  // The stylist asks for another draft: it goes through the pipeline and replaces this one.
  await draft.locator("button", { hasText: "Redraft" }).click();
  await page.locator(".form-status", { hasText: "A new draft is on its way" }).waitFor({ timeout: 15_000 });
  const rows = page.locator("table.emails tbody tr", { hasText: clientName });
  assert.equal(await rows.count(), 1, "the draft is rewritten in place, not duplicated");
});

test("the browser bundle is served with the right content types, compressed and cacheable", async () => {
  const wasm = await fetch(`${baseUrl}/pkg/engage.wasm`, { headers: { "accept-encoding": "gzip" } });
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers.get("content-type"), "application/wasm");
  assert.ok(wasm.headers.get("etag"), "an ETag lets browsers revalidate");
  const js = await fetch(`${baseUrl}/pkg/engage.js`);
  assert.match(js.headers.get("content-type"), /^text\/javascript/);
  const css = await fetch(`${baseUrl}/pkg/engage.css`);
  assert.match(css.headers.get("content-type"), /^text\/css/);
  const again = await fetch(`${baseUrl}/pkg/engage.js`, { headers: { "if-none-match": js.headers.get("etag") } });
  assert.equal(again.status, 304);
});

test("a client name with markup is shown as text on every page, never run", async () => {
  const hostile = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> ${unique}`;
  let dialogs = 0;
  page.on("dialog", (dialog) => {
    dialogs += 1;
    dialog.dismiss();
  });
  await openClients();
  await page.fill("#client-name", hostile);
  await page.fill("#client-email", `hostile.${unique}@example.com`);
  await page.check("#client-opt-in");
  await page.click("button[type='submit']");
  const row = page.locator("table.clients tbody tr", { hasText: `window.__pwned=1` });
  await row.waitFor({ timeout: 15_000 });
  assert.match(await row.textContent(), /<script>window.__pwned=1<\/script>/);

  await page.goto(`${baseUrl}/emails`);
  await page.waitForSelector("body[data-hydrated='true']", { timeout: 30_000 });
  await page.locator("table.emails tbody tr", { hasText: "window.__pwned=1" }).first().waitFor({ timeout: 30_000 });
  assert.equal(await page.evaluate(() => window.__pwned), undefined, "no markup from a client name ran");
  assert.equal(dialogs, 0);
  assert.equal(await page.locator("table.emails img").count(), 0, "no element was created from the name");
});
