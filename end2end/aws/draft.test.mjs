// The app on the AWS backend (DynamoDB, Streams, SNS and SQS played by moto_server)
// through a real browser: a stylist adds a client, the pipeline scores it and drafts the
// welcome email, and the draft is on the review queue ready to approve.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MAYA, app, demoPassword, launch, statusBecomes } from "../app.mjs";

const baseUrl = process.env.BASE_URL;
const artifacts = process.env.ARTIFACTS;
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

test("on AWS: a client added in the browser is scored and gets its welcome draft, which a stylist approves", async () => {
  const page = await signedIn(MAYA);
  // The book comes from DynamoDB: the demo clients are there.
  await page.screenshot({ path: join(artifacts, "aws-clients.png"), fullPage: true });
  assert.ok((await page.locator("table.clients tbody tr").count()) > 0, "the demo book is listed");

  const name = `Grace Hopper ${unique}`;
  const id = await addClient(page, name, `grace.${unique}@example.com`);
  // The first score arrives through stream -> SNS -> SQS -> processor; the page updates by itself.
  await page.waitForFunction(() => document.querySelector("#current-score")?.dataset.score, null, { timeout: 60_000 });
  assert.ok(Number(await page.locator("#current-score").getAttribute("data-score")) > 0);
  await page.screenshot({ path: join(artifacts, "aws-client.png"), fullPage: true });

  // The welcome draft is on the review queue.
  await open(page, "/emails");
  const row = page.locator("table.emails tbody tr", { hasText: name });
  await row.first().waitFor({ timeout: 60_000 });
  const emailId = await row.first().getAttribute("data-email-id");
  await open(page, `/emails/${emailId}`);
  assert.match(await page.locator("body").textContent(), new RegExp(name));
  await page.screenshot({ path: join(artifacts, "aws-draft.png"), fullPage: true });

  // Approving sends it (to the outbox): the status and the email's history say so.
  await page.click("#approve-form button[type='submit']");
  await statusBecomes(page, "sent");
  const history = await page.locator(".timeline").textContent();
  for (const step of ["approved", "sent"]) assert.match(history, new RegExp(step));
  assert.match(history, /maya\.okafor@engage\.example/);
  await open(page, `/clients/${id}`);
  assert.match(await page.locator("#client-name").textContent(), new RegExp(name));

  assert.deepEqual(consoleProblems, [], "no console errors");
  await page.context().close();
});
