// Accessibility: axe-core (pinned in package.json) on every page, as each role sees it,
// hydrated, at a desktop width and at a phone's 390 px. A serious or critical violation
// fails the test with the rule, what it asks for and where it was found.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { ADMIN, MANAGER, MAYA, app, demoPassword, hydrated, launch } from "../app.mjs";

const baseUrl = process.env.BASE_URL;
const password = demoPassword(readFileSync(process.env.ACCOUNTS, "utf8"));
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const WIDTHS = [
  { name: "desktop", viewport: { width: 1280, height: 900 } },
  { name: "390 px", viewport: { width: 390, height: 844 } },
];
let browser;
// Console errors are the other suites' business (the not-found page's 404 is one here).
const { signedIn, addClient } = app({ baseUrl, password, browser: () => browser, problems: [] });

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

// The serious and critical violations on the page as it is now, one line each.
async function violations(page) {
  await page.addScriptTag({ content: axeSource });
  const results = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const { violations } = await axe.run(document, { resultTypes: ["violations"] });
    return violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
    }));
  });
  return results
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id}: ${v.help} — at ${v.targets.join(", ")}`);
}

// The address of the first link on `path` whose address matches `pattern`, waiting up to a
// minute for one (the pipeline writes drafts a moment after the change that calls for them).
async function firstLink(page, path, pattern) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    await page.goto(`${baseUrl}${path}`);
    const hrefs = await page.locator("main a[href]").evaluateAll((links) => links.map((a) => a.getAttribute("href")));
    const href = hrefs.find((h) => pattern.test(h));
    if (href) return href;
    assert.ok(Date.now() < deadline, `a link matching ${pattern} on ${path}`);
    await page.waitForTimeout(1_000);
  }
}

for (const { name, viewport } of WIDTHS) {
  test(`no serious or critical axe violation on any page at ${name}`, async () => {
    const found = [];
    const check = async (page, path) => {
      await page.goto(`${baseUrl}${path}`);
      await hydrated(page);
      for (const line of await violations(page)) found.push(`${path}: ${line}`);
    };

    const context = await browser.newContext({ viewport, bypassCSP: true });
    const signIn = await context.newPage();
    await check(signIn, "/signin");
    await context.close();

    const stylist = await signedIn(MAYA, { viewport, bypassCSP: true });
    // A new client of Maya's, so there is a client page with a welcome draft on it.
    const id = await addClient(stylist, `Ada Access ${name}`, `ada.access.${Date.now().toString(36)}@example.com`);
    const client = `/clients/${id}`;
    const email = await firstLink(stylist, client, /^\/emails\/[^/?]+$/);
    for (const path of ["/", "/?band=at_risk&sort=score_lowest", "/clients/new", client, `${client}/edit`, "/emails", email]) {
      await check(stylist, path);
    }
    await stylist.context().close();

    const manager = await signedIn(MANAGER, { viewport, bypassCSP: true });
    for (const path of ["/dashboard", "/dlq", "/nowhere"]) await check(manager, path);
    await manager.context().close();

    const admin = await signedIn(ADMIN, { viewport, bypassCSP: true });
    await check(admin, "/api-keys");
    await admin.context().close();

    assert.deepEqual(found, [], `axe found:\n${found.join("\n")}`);
  });
}
