// Lighthouse (pinned in package.json) in its default mobile mode, with Debian's Chromium,
// on the pages a stylist and a manager open first: sign-in, clients, a client page and the
// dashboard. Starts the release server on a temporary database with demo data, signs in
// as the demo accounts, runs each page RUNS times (default 3) and prints the median
// scores as a Markdown table (issue 22's targets: performance ≥ 90, accessibility ≥ 95,
// best practices ≥ 95).
//
//   ENGAGE_BIN=$CARGO_TARGET_DIR/release/engage bench/lighthouse/run.sh
//
// The full reports go to bench/lighthouse/reports/ (not kept in git).

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, waitForHealth } from "../../end2end/server.mjs";
import { MANAGER, MAYA, demoPassword } from "../../end2end/app.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const bin = process.env.ENGAGE_BIN;
if (!bin) {
  console.error("ENGAGE_BIN must name the release engage binary");
  process.exit(2);
}
const runs = Number(process.env.RUNS || 3);
const chromium = process.env.ENGAGE_CHROMIUM || "/usr/bin/chromium";
const port = await freePort();
const work = mkdtempSync(join(tmpdir(), "engage-lighthouse-"));
const reports = join(here, "reports");
mkdirSync(reports, { recursive: true });
const baseUrl = `http://127.0.0.1:${port}`;

const server = spawn(bin, ["serve"], {
  cwd: work,
  env: {
    ...process.env,
    ENGAGE_ADDR: `127.0.0.1:${port}`,
    ENGAGE_DB: join(work, "engage.db"),
    ENGAGE_DEMO_DATA: "true",
    RUST_LOG: "warn",
  },
  stdio: ["ignore", openSync(join(reports, "server.log"), "w"), openSync(join(reports, "server.log"), "a")],
});
let exited = null;
server.once("exit", (code, signal) => (exited = { code, signal }));
process.on("exit", () => exited || server.kill("SIGKILL"));

// A session cookie for `email`, through the sign-in form as a browser would post it.
async function session(email, password) {
  const response = await fetch(`${baseUrl}/signin`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: baseUrl },
    body: new URLSearchParams({ email, password }),
  });
  const cookie = (response.headers.get("set-cookie") || "").split(";")[0];
  if (!cookie.startsWith("engage_session=")) throw new Error(`sign-in as ${email} failed: ${response.status}`);
  return cookie;
}

// Median scores (0–100) of `runs` Lighthouse runs on `path` with `cookie`.
function measure(name, path, cookie) {
  const scores = [];
  for (let i = 0; i < runs; i++) {
    const output = join(reports, `${name}-${i + 1}.json`);
    const args = [
      `${baseUrl}${path}`,
      `--chrome-path=${chromium}`,
      "--chrome-flags=--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run",
      "--only-categories=performance,accessibility,best-practices",
      "--output=json",
      `--output-path=${output}`,
      "--quiet",
    ];
    if (cookie) args.push(`--extra-headers=${JSON.stringify({ Cookie: cookie })}`);
    const run = spawnSync(join(here, "node_modules", ".bin", "lighthouse"), args, { stdio: ["ignore", "ignore", "inherit"] });
    if (run.status !== 0) throw new Error(`lighthouse failed on ${path} (exit ${run.status})`);
    const report = JSON.parse(readFileSync(output, "utf8"));
    scores.push({
      performance: report.categories.performance.score * 100,
      accessibility: report.categories.accessibility.score * 100,
      bestPractices: report.categories["best-practices"].score * 100,
      lcp: report.audits["largest-contentful-paint"].numericValue,
      tbt: report.audits["total-blocking-time"].numericValue,
    });
  }
  const median = (key) => scores.map((s) => s[key]).sort((a, b) => a - b)[Math.floor(scores.length / 2)];
  return {
    performance: median("performance"),
    accessibility: median("accessibility"),
    bestPractices: median("bestPractices"),
    lcp: median("lcp"),
    tbt: median("tbt"),
  };
}

let failed = false;
try {
  await waitForHealth(baseUrl, () => exited, 60_000);
  const password = demoPassword(readFileSync(join(work, "demo-accounts.txt"), "utf8"));
  const stylist = await session(MAYA, password);
  const manager = await session(MANAGER, password);
  const clients = await (await fetch(`${baseUrl}/`, { headers: { cookie: stylist } })).text();
  const client = clients.match(/href="(\/clients\/(?!new)[^"/?]+)"/)?.[1];
  if (!client) throw new Error("no client on the stylist's list");
  const pages = [
    ["sign-in", "/signin", null],
    ["clients", "/", stylist],
    ["client page", client, stylist],
    ["dashboard", "/dashboard", manager],
  ];
  console.log(`Lighthouse (mobile), median of ${runs} runs per page`);
  console.log("| page | performance | accessibility | best practices | LCP ms | TBT ms |");
  console.log("|---|---|---|---|---|---|");
  for (const [name, path, cookie] of pages) {
    const s = measure(name.replace(" ", "-"), path, cookie);
    console.log(
      `| ${name} | ${s.performance} | ${s.accessibility} | ${s.bestPractices} | ${Math.round(s.lcp)} | ${Math.round(s.tbt)} |`,
    );
  }
} catch (error) {
  console.error(`lighthouse: ${error.message}`);
  failed = true;
}
server.kill("SIGTERM");
process.exit(failed ? 1 : 0);
