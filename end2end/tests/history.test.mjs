// The first run's demo data has a past: 90 days of a business replayed through the
// pipeline, so a manager who opens the dashboard on fresh demo data sees every chart with
// history, and a client's timeline shows their months with the business.
//
// Runs before the suites that add clients (the files run in name order): this is the demo
// data as the server made it on its first start.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { MANAGER, app, demoPassword, launch } from "../app.mjs";

const baseUrl = process.env.BASE_URL;
const artifacts = process.env.ARTIFACTS;
const password = demoPassword(readFileSync(process.env.ACCOUNTS, "utf8"));
let browser;
const consoleProblems = [];
const { open, signedIn } = app({ baseUrl, password, browser: () => browser, problems: consoleProblems });

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

// The rows of a chart's own table ("The numbers"), as text cells.
const rows = (page, chart) =>
  page.$$eval(`#${chart} details table tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())));

const number = (cell) => Number(cell.replace(/[^0-9.]/g, "")) || 0;

// Each time series, and when one of its rows counts as a data point.
const SERIES = {
  "chart-mix": (row) => row.slice(1).some((cell) => number(cell) > 0),
  "chart-funnel": (row) => row.slice(1).some((cell) => number(cell) > 0),
  "chart-quality": (row) => row[3] !== "—",
  "chart-review-time": (row) => row[1] !== "—",
  "chart-cost": (row) => number(row[1]) > 0,
};

const skip =
  process.env.BACKEND === "aws"
    ? "the AWS suite's server adds its demo clients as of now (--demo-days 0): moto copies the whole table on every transaction, so a 90-day replay takes hours there; server/tests/replay.rs replays one past on both backends and compares the dashboards"
    : false;

test("fresh demo data: each chart of the dashboard has data points on more than 30 days, and timelines have a past", { skip }, async () => {
  const manager = await signedIn(MANAGER);
  const to = new Date();
  const from = new Date(to.getTime() - 89 * 86_400_000);
  const day = (d) => d.toISOString().slice(0, 10);
  await open(manager, `/dashboard?from=${day(from)}&to=${day(to)}`);
  await manager.locator("#chart-mix").waitFor();
  await manager.screenshot({ path: join(artifacts, "dashboard-history.png"), fullPage: true });

  const found = {};
  for (const [chart, isPoint] of Object.entries(SERIES)) {
    const points = (await rows(manager, chart)).filter(isPoint);
    const days = new Set(points.map((row) => row[0]));
    found[chart] = days.size;
    // The chart draws what its table lists.
    assert.ok((await manager.locator(`#${chart} svg rect, #${chart} svg polygon`).count()) > 0, `${chart} draws`);
  }
  console.log(`days with data points, per chart: ${JSON.stringify(found)}`);
  for (const [chart, days] of Object.entries(found)) {
    assert.ok(days > 30, `${chart} has data points on ${days} days (all: ${JSON.stringify(found)})`);
  }
  // The bar charts draw a bar for each of those days.
  for (const chart of ["chart-quality", "chart-review-time", "chart-cost"]) {
    const bars = await manager.$$eval(`#${chart} svg rect`, (rects) => rects.filter((r) => Number(r.getAttribute("height")) > 0).length);
    assert.ok(bars > 30, `${chart} draws ${bars} bars`);
  }
  // The charts of now: the 300 demo clients (and the few the accessibility checks added)
  // in their bands, mostly Steady or Thriving; at-risk clients in every book.
  const bands = Object.fromEntries((await rows(manager, "chart-bands")).map(([band, clients]) => [band, number(clients)]));
  const total = Object.values(bands).reduce((a, b) => a + b, 0);
  assert.ok(total >= 300 && total < 310, JSON.stringify(bands));
  assert.ok(bands["Thriving"] + bands["Steady"] > total * 0.6, JSON.stringify(bands));
  assert.ok(bands["At risk"] > 0 && bands["At risk"] < total * 0.2, JSON.stringify(bands));
  const atRisk = await rows(manager, "chart-at-risk");
  assert.equal(atRisk.length, 4);
  // Every stylist has sent emails in the range, and reviews with a median time.
  const stylists = await manager.$$eval("table.stylists tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())));
  assert.equal(stylists.length, 4);
  for (const [name, clients, , , median, sent] of stylists) {
    assert.ok(number(clients) > 50 && number(sent) > 0 && median !== "—", `${name}: ${clients} clients, ${sent} sent, median ${median}`);
  }
  // The simulated model and the template (its outage) both wrote drafts; the outage left
  // a dead letter or two.
  const writers = await manager.$$eval("table.writers tbody tr", (trs) => trs.map((tr) => tr.getAttribute("data-writer")));
  assert.ok(writers.includes("demo/simulated-llm") && writers.includes("template"), writers.join(", "));
  const deadLetters = number(await manager.locator("#health-dlq").textContent());
  assert.ok(deadLetters >= 1 && deadLetters <= 2, `dead letters: ${deadLetters}`);
  // Emailed and held-out clients to compare.
  assert.ok((await manager.locator("#outcomes table tbody tr").count()) > 0, "the outcomes panel has rows");
  await manager.context().close();

  // A client who has been with the business for a while has months of timeline.
  const reader = await signedIn(MANAGER);
  await open(reader, "/?sort=score_highest");
  await reader.locator("table.clients tbody tr a").first().click();
  await reader.locator("ol.timeline time").first().waitFor();
  const dates = new Set((await reader.locator("ol.timeline time").allTextContents()).map((t) => t.trim().slice(0, 10)));
  assert.ok(dates.size > 5, `the timeline covers ${dates.size} days: ${[...dates].join(", ")}`);
  await reader.screenshot({ path: join(artifacts, "client-history.png"), fullPage: true });
  await reader.context().close();
  assert.deepEqual(consoleProblems, []);
});
