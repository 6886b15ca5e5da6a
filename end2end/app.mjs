// Browser helpers shared by the end-to-end suites: launching Debian's chromium, signing
// in, waiting for hydration, and adding a client through the form.

import { chromium } from "playwright-core";

export const MAYA = "maya.okafor@engage.example";
export const JONAS = "jonas.lindqvist@engage.example";
export const MANAGER = "manager@engage.example";
export const ADMIN = "admin@engage.example";

export const launch = () =>
  chromium.launch({
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

// The demo accounts' shared password, from the file the server wrote on first start.
export const demoPassword = (accountsText) => accountsText.match(/password for each: (\S+)\)/)[1];

export const hydrated = (page) => page.waitForSelector("body[data-hydrated='true']", { timeout: 30_000 });

// The app at `baseUrl` as the demo users see it; `browser()` gives the launched browser and
// every console error (or hydration warning) lands in `problems`.
export function app({ baseUrl, password, browser, problems }) {
  async function open(page, path) {
    await page.goto(`${baseUrl}${path}`);
    await hydrated(page);
  }

  // A signed-in page for `email`, in its own browser context (its own cookies).
  // `bypassCSP` lets a test inject a checker (axe) past the page's Content-Security-Policy.
  async function signedIn(email, { javaScript = true, viewport = { width: 1280, height: 900 }, bypassCSP = false } = {}) {
    const context = await browser().newContext({ javaScriptEnabled: javaScript, viewport, bypassCSP });
    const page = await context.newPage();
    page.on("console", (message) => {
      // Every error, and any warning about hydration (Chrome's note on the preloaded wasm
      // being fetched by the loader rather than the preload is not one).
      const text = message.text();
      if (message.type() === "error" || (message.type() === "warning" && /hydrat/i.test(text))) problems.push(text);
    });
    page.on("pageerror", (error) => problems.push(error.message));
    // A server function the server does not know (the bundle and server disagree on its
    // address) answers 404; the page would only say "something went wrong".
    page.on("response", (response) => {
      const url = new URL(response.url());
      if (url.pathname.startsWith("/api/") && !url.pathname.startsWith("/api/v1/") && response.status() === 404) {
        problems.push(`no server function at ${url.pathname}`);
      }
    });
    await page.goto(`${baseUrl}/signin`);
    await page.fill("#signin-email", email);
    await page.fill("#signin-password", password);
    await Promise.all([page.waitForURL((url) => !url.pathname.startsWith("/signin")), page.click("button[type='submit']")]);
    if (javaScript) await hydrated(page);
    return page;
  }

  // Adds a client through the form as the signed-in stylist; returns its id.
  async function addClient(page, name, email, { optIn = true } = {}) {
    await open(page, "/clients/new");
    await page.fill("#client-name", name);
    await page.fill("#client-email", email);
    if (optIn) await page.check("#client-opt-in");
    await Promise.all([page.waitForURL(/\/clients\/[^/]+\?added=1$/, { timeout: 15_000 }), page.click(".client-form button[type='submit']")]);
    await hydrated(page);
    return new URL(page.url()).pathname.split("/")[2];
  }

  return { open, signedIn, addClient };
}

// Approval queues the send; the sender delivers a moment later. Waits for the email page's
// status to read `text` (live updates show it; without JavaScript, or if an update is
// missed, the page is reloaded to see it).
export async function statusBecomes(page, text, timeout = 30_000) {
  const until = Date.now() + timeout;
  for (;;) {
    const ok = await page
      .locator("#email-status", { hasText: text })
      .waitFor({ timeout: 3_000 })
      .then(() => true, () => false);
    if (ok) return;
    if (Date.now() > until) throw new Error(`the email's status never became "${text}"`);
    await page.reload();
  }
}
