// The stylist's app through a real browser against the release server with demo data:
// sign-in, clients (create with a validation error, edit with a conflict), recording a Fix
// and watching the score change, the email review workflow (redraft, edit, approve, reject),
// the unsubscribe link, book scoping, forms without JavaScript, and hostile names.
// Screenshots go to ARTIFACTS.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ADMIN, JONAS, MANAGER, MAYA, app, demoPassword, hydrated, launch, statusBecomes } from "../app.mjs";

const baseUrl = process.env.BASE_URL;
const artifacts = process.env.ARTIFACTS;
const outbox = process.env.OUTBOX;
const password = demoPassword(readFileSync(process.env.ACCOUNTS, "utf8"));
const unique = Date.now().toString(36);
let browser;
const consoleProblems = [];
const { open, signedIn, addClient } = app({ baseUrl, password, browser: () => browser, problems: consoleProblems });

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

async function currentScore(page) {
  return Number(await page.locator("#current-score").getAttribute("data-score"));
}

test("sign-in: the app asks who you are, refuses a wrong password, and shows who is signed in", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${baseUrl}/emails`);
  assert.match(page.url(), /\/signin\?next=%2Femails$/);
  await page.fill("#signin-email", MAYA);
  await page.fill("#signin-password", "not the password at all");
  await page.click("button[type='submit']");
  await page.locator("#signin-error", { hasText: "do not match" }).waitFor();
  await page.screenshot({ path: join(artifacts, "signin.png") });
  await page.fill("#signin-email", MAYA);
  await page.fill("#signin-password", password);
  await Promise.all([page.waitForURL(`${baseUrl}/emails`), page.click("button[type='submit']")]);
  await hydrated(page);
  assert.match(await page.locator("#signed-in-as").textContent(), /maya\.okafor@engage\.example · stylist/);
  await page.click("text=Sign out");
  await page.waitForURL(/\/signin\?signed_out=1$/);
  await page.goto(`${baseUrl}/`);
  assert.match(page.url(), /\/signin$/, "signed out means signed out");
  await context.close();
});

test("a new client: a bad email is named and nothing saved; then the client is added and scored without a reload", async () => {
  const page = await signedIn(MAYA);
  await open(page, "/clients/new");
  await page.fill("#client-name", `Nobody Invalid ${unique}`);
  await page.fill("#client-email", "nobody-at-example");
  await page.click(".client-form button[type='submit']");
  const error = page.locator("#email-error");
  await error.waitFor({ timeout: 15_000 });
  assert.match(await error.textContent(), /^Email: /);
  assert.equal(await page.locator("#client-email").getAttribute("aria-invalid"), "true");
  await page.screenshot({ path: join(artifacts, "client-form-error.png"), fullPage: true });
  await open(page, `/?search=${encodeURIComponent(`Nobody Invalid ${unique}`)}`);
  assert.equal(await page.locator("table.clients tbody tr").count(), 0, "nothing was created");

  const id = await addClient(page, `Ada Testwright ${unique}`, `ada.${unique}@example.com`);
  assert.match(await page.locator("#client-name").textContent(), /Ada Testwright/);
  // The first score arrives through the pipeline; the page updates by itself.
  await page.waitForFunction(() => document.querySelector("#current-score")?.dataset.score, null, { timeout: 30_000 });
  assert.ok((await currentScore(page)) > 0);
  await open(page, `/?search=${encodeURIComponent(`Testwright ${unique}`)}`);
  const row = page.locator(`tr[data-client-id='${id}']`);
  await row.waitFor();
  assert.match(await row.textContent(), /Maya Okafor/);
  await page.screenshot({ path: join(artifacts, "clients.png"), fullPage: true });
  await page.context().close();
});

test("recording a Fix moves the score, shown on the open page without a reload", async () => {
  const page = await signedIn(MAYA);
  const id = await addClient(page, `Fix Recorder ${unique}`, `fix.${unique}@example.com`, { optIn: false });
  await page.waitForFunction(() => document.querySelector("#current-score")?.dataset.score, null, { timeout: 30_000 });
  const before = await currentScore(page);
  await page.fill("#fix-sent", "5");
  await page.fill("#fix-kept", "5");
  await page.fill("#fix-value", "420.00");
  await page.click("#fix-form button[type='submit']");
  await page.locator("#fix-form .form-status", { hasText: "Recorded" }).waitFor({ timeout: 15_000 });
  await page.waitForFunction((b) => Number(document.querySelector("#current-score")?.dataset.score) !== b, before, { timeout: 30_000 });
  const after = await currentScore(page);
  assert.ok(after > before, `score ${before} -> ${after}`);
  await page.locator(".timeline li", { hasText: "Fix recorded" }).first().waitFor({ timeout: 15_000 });
  // A bad value is named and nothing is recorded.
  await page.fill("#fix-sent", "0");
  await page.click("#fix-form button[type='submit']");
  await page.locator("#items_sent-error").waitFor({ timeout: 15_000 });
  await page.screenshot({ path: join(artifacts, "client.png"), fullPage: true });
  assert.equal(new URL(page.url()).pathname, `/clients/${id}`);
  await page.context().close();
});

test("an edit based on an old version shows the newer values; saving again works", async () => {
  const maya = await signedIn(MAYA);
  const id = await addClient(maya, `Conflict Case ${unique}`, `conflict.${unique}@example.com`, { optIn: false });
  const manager = await signedIn(MANAGER);
  await open(maya, `/clients/${id}/edit`);
  await open(manager, `/clients/${id}/edit`);
  await manager.fill("#client-name", `Conflict Manager ${unique}`);
  await Promise.all([manager.waitForURL(/\?saved=1$/), manager.click(".client-form button[type='submit']")]);

  await maya.fill("#client-name", `Conflict Maya ${unique}`);
  await maya.click(".client-form button[type='submit']");
  await maya.locator("#conflict").waitFor({ timeout: 15_000 });
  assert.equal(await maya.inputValue("#client-name"), `Conflict Manager ${unique}`, "the form shows the newer values");
  await maya.screenshot({ path: join(artifacts, "client-conflict.png"), fullPage: true });
  await maya.fill("#client-name", `Conflict Maya ${unique}`);
  await Promise.all([maya.waitForURL(/\?saved=1$/), maya.click(".client-form button[type='submit']")]);
  await hydrated(maya);
  assert.match(await maya.locator("#client-name").textContent(), /Conflict Maya/);
  await maya.context().close();
  await manager.context().close();
});

// The newest draft of client `name` on the review queue: its id.
async function draftOf(page, name) {
  await open(page, "/emails");
  const row = page.locator("table.emails tbody tr", { hasText: name });
  await row.first().waitFor({ timeout: 30_000 });
  return row.first().getAttribute("data-email-id");
}

test("review: redraft with an instruction, edit, approve and send; reject another; unsubscribe from the sent email", async () => {
  const page = await signedIn(MAYA);
  await addClient(page, `Review Reader ${unique}`, `review.${unique}@example.com`);
  await addClient(page, `Review Rejected ${unique}`, `rejected.${unique}@example.com`);
  // New drafts appear on the open review queue without a reload.
  await open(page, "/emails");
  await page.locator("table.emails tbody tr", { hasText: `Review Rejected ${unique}` }).waitFor({ timeout: 30_000 });
  await page.screenshot({ path: join(artifacts, "review-queue.png"), fullPage: true });

  const id = await draftOf(page, `Review Reader ${unique}`);
  await open(page, `/emails/${id}`);
  await page.fill("#redraft-instruction", "mention the autumn edit");
  await page.click("#redraft-form button[type='submit']");
  await page.locator(".form-status", { hasText: "A new draft is on its way" }).waitFor({ timeout: 15_000 });
  await page.locator(".timeline li", { hasText: "redrafted" }).waitFor({ timeout: 30_000 });

  await page.fill("#email-subject", `Your autumn Fix ${unique}`);
  await page.click("#edit-form button[type='submit']");
  await page.locator(".preview-subject", { hasText: `Your autumn Fix ${unique}` }).waitFor({ timeout: 15_000 });
  await page.screenshot({ path: join(artifacts, "email-review.png"), fullPage: true });
  await page.click("#approve-form button[type='submit']");
  // What the approval did stays on the page while the tools go away.
  await page.locator("#page-status", { hasText: "Approved" }).waitFor({ timeout: 15_000 });
  await statusBecomes(page, "sent");
  const readerPage = await page.locator(".meta a", { hasText: "Open client" }).getAttribute("href");
  assert.equal(await page.locator("#edit-form").count(), 0, "a sent email cannot be edited");
  const history = await page.locator(".timeline").textContent();
  for (const step of ["redraft requested", "redrafted", "edited", "approved", "sent"]) assert.match(history, new RegExp(step));
  assert.match(history, /maya\.okafor@engage\.example/);

  const other = await draftOf(page, `Review Rejected ${unique}`);
  await open(page, `/emails/${other}`);
  await page.click("#reject-form button[type='submit']");
  await page.locator("#reason-error").waitFor({ timeout: 15_000 });
  await page.fill("#reject-reason", "Not the right moment");
  await page.click("#reject-form button[type='submit']");
  await page.locator("#email-status", { hasText: "rejected" }).waitFor({ timeout: 15_000 });

  // The sent email is in the outbox with a signed unsubscribe link that works.
  const eml = readFileSync(join(outbox, `${id}.eml`), "utf8");
  assert.match(eml, new RegExp(`Subject: Your autumn Fix ${unique}`));
  const link = eml.match(/^List-Unsubscribe: <([^>]+)>/m)[1];
  const stranger = await browser.newContext();
  const visitor = await stranger.newPage();
  await visitor.goto(link);
  await visitor.locator("h1", { hasText: "Unsubscribe from these emails?" }).waitFor();
  await visitor.click("main button[type='submit']");
  await visitor.locator("h1", { hasText: "You are unsubscribed" }).waitFor();
  await visitor.goto(link.replace(/token=[^&]+/, "token=forged"));
  await visitor.locator("h1", { hasText: "This link is not valid" }).waitFor();
  await stranger.close();
  await open(page, readerPage);
  await page.locator(".meta", { hasText: "Unsubscribed from emails" }).waitFor();
  await page.context().close();
});

test("a stylist cannot open another stylist's client", async () => {
  const manager = await signedIn(MANAGER);
  await open(manager, "/?sort=newest");
  // The newest of Jonas's clients, however many the other tests added to other books since.
  const jonasRow = manager.locator("table.clients tbody tr", { hasText: "Jonas Lindqvist" }).first();
  for (let pages = 1; (await jonasRow.count()) === 0; pages++) {
    assert.ok(pages < 20, "a client of Jonas's within 20 pages");
    await open(manager, await manager.locator("a[rel='next']").getAttribute("href"));
  }
  const id = await jonasRow.getAttribute("data-client-id");
  const name = await jonasRow.locator("td a").textContent();
  await manager.context().close();

  const maya = await signedIn(MAYA);
  const response = await maya.goto(`${baseUrl}/clients/${id}`);
  assert.equal(response.status(), 404);
  await maya.locator("h1", { hasText: "Not found" }).waitFor();
  assert.equal(await maya.locator(`text=${name}`).count(), 0);
  await open(maya, `/?search=${encodeURIComponent(name)}`);
  assert.equal(await maya.locator("table.clients tbody tr", { hasText: "Jonas Lindqvist" }).count(), 0);
  await maya.context().close();
});

test("without JavaScript: sign in, add a client (with an error first), record a Fix, approve a draft", async () => {
  const page = await signedIn(JONAS, { javaScript: false });
  await page.goto(`${baseUrl}/clients/new`);
  await page.fill("#client-email", `nojs.${unique}@example.com`);
  await Promise.all([page.waitForURL(/__err=/), page.click(".client-form button[type='submit']")]);
  assert.match(await page.locator("#name-error").textContent(), /^Name: /, "the error is shown by the server");
  // The same address with JavaScript: the form island starts from the same error, so it
  // hydrates (a mismatch would stop every island and show in the console check).
  const withScript = await signedIn(JONAS);
  await open(withScript, new URL(page.url()).pathname + new URL(page.url()).search);
  assert.match(await withScript.locator("#name-error").textContent(), /^Name: /);
  await withScript.context().close();
  await page.fill("#client-name", `No Script ${unique}`);
  await page.fill("#client-email", `nojs.${unique}@example.com`);
  await page.check("#client-opt-in");
  await Promise.all([page.waitForURL(/\/clients\/[^/]+\?added=1$/), page.click(".client-form button[type='submit']")]);
  const clientPath = new URL(page.url()).pathname;
  await page.fill("#fix-sent", "4");
  await page.fill("#fix-kept", "3");
  await page.fill("#fix-value", "240");
  await Promise.all([page.waitForNavigation(), page.click("#fix-form button[type='submit']")]);
  assert.equal(new URL(page.url()).pathname, clientPath, "back on the client page");
  // Without scripts nothing refreshes by itself: reload until the pipeline has caught up.
  for (let i = 0; i < 60 && (await page.locator(".timeline li", { hasText: "Fix recorded" }).count()) === 0; i++) {
    await new Promise((r) => setTimeout(r, 250));
    await page.reload();
  }
  assert.ok((await page.locator(".timeline li", { hasText: "Fix recorded" }).count()) > 0);
  let emailHref = null;
  for (let i = 0; i < 60 && !emailHref; i++) {
    await page.reload();
    emailHref = await page.locator(".email-list a").first().getAttribute("href").catch(() => null);
    if (!emailHref) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(emailHref, "the welcome draft was written");
  await page.goto(`${baseUrl}${emailHref}`);
  await Promise.all([page.waitForNavigation(), page.click("#approve-form button[type='submit']")]);
  // Approved and queued; the sender delivers it a moment later.
  assert.match(await page.locator("#email-status").textContent(), /approved|sent/);
  await statusBecomes(page, "sent");
  assert.equal(await page.locator("#email-status").textContent(), "sent");
  await page.screenshot({ path: join(artifacts, "no-js-email.png"), fullPage: true });
  await page.context().close();
});

test("a client name with markup is shown as text on every page and in the draft, never run", async () => {
  const page = await signedIn(MAYA);
  const hostile = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> ${unique}`;
  let dialogs = 0;
  page.on("dialog", (dialog) => {
    dialogs += 1;
    dialog.dismiss();
  });
  const id = await addClient(page, hostile, `hostile.${unique}@example.com`);
  assert.match(await page.locator("#client-name").textContent(), /<script>window.__pwned=1<\/script>/);
  await open(page, `/?search=${encodeURIComponent(unique)}`);
  await page.locator(`tr[data-client-id='${id}']`).waitFor();
  const emailId = await draftOf(page, "window.__pwned=1");
  await open(page, `/emails/${emailId}`);
  assert.match(await page.locator("h1").first().textContent(), /<script>window.__pwned=1<\/script>/);
  assert.equal(await page.evaluate(() => window.__pwned), undefined, "no markup from a client name ran");
  assert.equal(dialogs, 0);
  assert.equal(await page.locator("main img").count(), 0, "no element was created from the name");
  await page.context().close();
});

test("usable at phone width, keyboard reachable, with labelled fields", async () => {
  const page = await signedIn(MAYA, { viewport: { width: 390, height: 844 } });
  await open(page, "/");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow}px`);
  await page.screenshot({ path: join(artifacts, "clients-phone.png"), fullPage: true });
  // The first Tab reaches the skip link, and focus is visible.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip-link");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, "none");
  // Every input on the main pages has a label.
  for (const path of ["/", "/clients/new"]) {
    await open(page, path);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll("main input:not([type=hidden]), main select, main textarea")]
        .filter((el) => !(el.labels?.length || el.getAttribute("aria-label")))
        .map((el) => el.name),
    );
    assert.deepEqual(unlabelled, [], `unlabelled fields on ${path}`);
  }
  await page.context().close();
});

test("the browser bundle is served under content-hashed names, with the right content types, compressed and cached for good", async () => {
  const html = await (await fetch(`${baseUrl}/signin`)).text();
  const js = html.match(/<link rel="modulepreload" href="\/pkg\/(engage-[0-9a-f]{16})\.js"/)?.[1];
  const wasm = html.match(/href="\/pkg\/(engage-[0-9a-f]{16})\.wasm"/)?.[1];
  const css = html.match(/<link rel="stylesheet" id="leptos" href="\/pkg\/(engage-[0-9a-f]{16})\.css"/)?.[1];
  assert.ok(js && js === wasm && js === css, `one hashed name for the bundle: ${js} ${wasm} ${css}`);
  const wasmResponse = await fetch(`${baseUrl}/pkg/${wasm}.wasm`, { headers: { "accept-encoding": "gzip" } });
  assert.equal(wasmResponse.status, 200);
  assert.equal(wasmResponse.headers.get("content-type"), "application/wasm");
  assert.equal(wasmResponse.headers.get("content-encoding"), "gzip");
  assert.equal(wasmResponse.headers.get("cache-control"), "public, max-age=31536000, immutable");
  const jsResponse = await fetch(`${baseUrl}/pkg/${js}.js`);
  assert.match(jsResponse.headers.get("content-type"), /^text\/javascript/);
  const cssResponse = await fetch(`${baseUrl}/pkg/${css}.css`);
  assert.match(cssResponse.headers.get("content-type"), /^text\/css/);
  const again = await fetch(`${baseUrl}/pkg/${js}.js`, { headers: { "if-none-match": jsResponse.headers.get("etag") } });
  assert.equal(again.status, 304);
  // The unhashed names are not served: a page can only ask for the bundle it was built with.
  assert.equal((await fetch(`${baseUrl}/pkg/engage.js`)).status, 404);
});

test("an admin creates an API key for a stylist's book, the key works on the API, and revoking it stops it", async () => {
  const page = await signedIn(ADMIN);
  await open(page, "/api-keys");
  await page.fill("input[name='name']", `shop import ${unique}`);
  await page.selectOption("select[name='role']", "stylist");
  await page.selectOption("select[name='stylist_id']", { label: "Maya Okafor" });
  await page.click("text=Create key");
  const secret = (await page.locator("#new-key-secret").textContent()).trim();
  assert.match(secret, /^ek_[0-9a-f]{16}_[0-9a-f]{64}$/);
  await page.screenshot({ path: join(artifacts, "api-keys.png"), fullPage: true });
  const call = async (path) => fetch(`${baseUrl}${path}`, { headers: { Authorization: `Bearer ${secret}` } });
  const clients = await (await call("/api/v1/clients?limit=200")).json();
  assert.ok(clients.clients.length > 0, "the key reaches Maya's book");
  assert.ok(clients.clients.every((c) => c.stylist_name === "Maya Okafor"), "and only Maya's book");
  const row = page.locator("#api-keys tr", { hasText: `shop import ${unique}` });
  await row.locator("text=Revoke").click();
  await row.locator("text=revoked").waitFor();
  await page.locator("#page-status", { hasText: `Revoked "shop import ${unique}"` }).waitFor();
  // Revoking does not take away a secret just shown (rotating: create, revoke, copy).
  assert.equal((await page.locator("#new-key-secret").textContent()).trim(), secret);
  assert.equal((await call("/api/v1/clients")).status, 401, "a revoked key opens nothing");
  await open(page, "/api-keys");
  await page.locator("#api-keys tr", { hasText: `shop import ${unique}` }).locator("text=revoked").waitFor();
  assert.equal((await page.content()).includes(secret), false, "the secret is shown once, never again");
  await page.context().close();
});

test("no hydration warnings or script errors in the browser console", () => {
  // Refused requests (a 404 page, a server function answering a validation error) are
  // logged by the browser as failed loads; they are expected here, scripts errors are not.
  const problems = consoleProblems.filter((text) => !/^Failed to load resource: the server responded with a status of (404|500)/.test(text));
  assert.deepEqual(problems, []);
});

test("sent emails are .eml files in the outbox", () => {
  const files = readdirSync(outbox).filter((f) => f.endsWith(".eml"));
  assert.ok(files.length >= 2, `outbox holds ${files.length} emails`);
});

test("the dashboard shows every chart, and a new draft appears on it without a reload", async () => {
  const manager = await signedIn(MANAGER);
  await open(manager, "/dashboard");
  for (const chart of ["chart-bands", "chart-mix", "chart-at-risk", "chart-funnel", "chart-quality", "chart-review-time", "chart-cost"]) {
    const figure = manager.locator(`#${chart}`);
    await figure.waitFor();
    assert.ok((await figure.locator("svg rect, svg polygon").count()) > 0, `${chart} draws its data`);
    assert.ok((await figure.locator("details table tbody tr").count()) > 0, `${chart} has its table`);
  }
  // The charts colour through classes (the security policy allows no inline style): a
  // bar's fill is its band's colour, not the black an unstyled shape gets.
  const fills = await manager.$$eval("#chart-bands svg rect", (rects) => rects.map((r) => getComputedStyle(r).fill));
  assert.ok(fills.length > 0 && fills.every((fill) => fill !== "rgb(0, 0, 0)"), `band colours: ${fills}`);
  await manager.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });
  const drafted = async () => Number((await manager.locator("#chart-funnel details tbody tr").last().locator("td").nth(1).textContent()).trim());
  const before = await drafted();
  // A stylist adds a client who agreed to emails: the pipeline drafts a welcome.
  const maya = await signedIn(MAYA);
  await addClient(maya, `Dashboard Watcher ${unique}`, `watcher.${unique}@example.com`);
  await maya.context().close();
  await manager.waitForFunction(
    (b) => Number(document.querySelector("#chart-funnel details tbody tr:last-child td:nth-child(2)")?.textContent) > b,
    before,
    { timeout: 30_000 },
  );
  await manager.context().close();
});

test("dead letters: a manager sees the list (empty on a healthy pipeline); a stylist is turned away", async () => {
  const manager = await signedIn(MANAGER);
  const response = await manager.goto(`${baseUrl}/dlq`);
  assert.equal(response.status(), 200);
  assert.equal((await manager.locator("h1").first().textContent()).trim(), "Dead letters");
  const listed = manager.locator("p.empty, table tbody tr");
  await listed.first().waitFor();
  assert.ok((await listed.count()) > 0, "the list or its empty state is shown");
  await manager.context().close();
  const maya = await signedIn(MAYA);
  const refused = await maya.goto(`${baseUrl}/dlq`);
  assert.equal(refused.status(), 403);
  assert.match(await maya.locator("body").textContent(), /Not for your role/);
  await maya.context().close();
});

test("the security policy lets the app's own scripts run and stops an injected one", async () => {
  // Its own context, outside the console check: the refused script is reported there.
  const context = await browser.newContext();
  const page = await context.newPage();
  const response = await page.goto(`${baseUrl}/signin`);
  const policy = response.headers()["content-security-policy"];
  assert.match(policy, /script-src 'self' 'nonce-[^']+'/);
  assert.match(policy, /frame-ancestors 'none'/);
  await hydrated(page);
  const outcome = await page.evaluate(
    () =>
      new Promise((resolve) => {
        document.addEventListener("securitypolicyviolation", (event) => resolve({ refused: event.violatedDirective, ran: window.injected === true }), { once: true });
        const script = document.createElement("script");
        script.textContent = "window.injected = true";
        document.body.append(script);
        setTimeout(() => resolve({ refused: null, ran: window.injected === true }), 2000);
      }),
  );
  assert.equal(outcome.ran, false, "an inline script without the nonce did not run");
  assert.match(outcome.refused ?? "", /^script-src/);
  await context.close();
});
