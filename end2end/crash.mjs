// Crash test: the embedded pipeline loses nothing and applies nothing twice when the
// process is killed at random moments.
//
//   ENGAGE_BIN=/path/to/release/engage node end2end/crash.mjs
//
// Starts `engage serve` on a temporary database, creates clients over HTTP, then sends
// Fix updates from several concurrent senders while SIGKILLing the server at random
// moments (restarting it each time). An update is "accepted" when the server answered
// 200 with the new version. At the end, after the pipeline drains:
//   - every client's score history has exactly one entry per version, so every accepted
//     update (and every other stored change) produced exactly one score change;
//   - no client has more than one draft awaiting review, and no event made two drafts;
//   - the queue and the change feed are drained and the dead-letter queue is empty;
//   - the server stops cleanly on SIGTERM.
// Settings: CRASH_CLIENTS (default 12), CRASH_UPDATES (600), CRASH_KILLS (8), CRASH_SEED.

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, waitForHealth as waitUntilHealthy } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const bin = process.env.ENGAGE_BIN;
if (!bin) {
  console.error("ENGAGE_BIN must name the release engage binary");
  process.exit(2);
}
const CLIENTS = Number(process.env.CRASH_CLIENTS || 12);
const UPDATES = Number(process.env.CRASH_UPDATES || 600);
const KILLS = Number(process.env.CRASH_KILLS || 8);
const SENDERS = 6;

// A small seeded generator, so a failing run can be repeated with CRASH_SEED.
let seed = Number(process.env.CRASH_SEED || Date.now() % 100000);
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};

const port = await freePort();
const work = mkdtempSync(join(tmpdir(), "engage-crash-"));
const artifacts = join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });
const serverLog = join(artifacts, "crash-server.log");
openSync(serverLog, "w");
const baseUrl = `http://127.0.0.1:${port}`;
const log = (message) => console.log(`crash: ${message}`);

let server = null;
let serverExit = null;
function start() {
  serverExit = null;
  server = spawn(bin, ["serve"], {
    cwd: work,
    env: {
      ...process.env,
      ENGAGE_DB: join(work, "engage.db"),
      ENGAGE_ADDR: `127.0.0.1:${port}`,
      ENGAGE_DEMO_DATA: "false",
      ENGAGE_QUEUE_VISIBILITY_SECS: "5",
      // The updates come as fast as the server answers, from one session: this test is
      // about crashes, not the per-session rate limit.
      ENGAGE_API_RATE_PER_MINUTE: "1000000",
      RUST_LOG: "info",
    },
    stdio: ["ignore", openSync(serverLog, "a"), openSync(serverLog, "a")],
  });
  const current = server;
  current.exited = new Promise((resolve) =>
    current.once("exit", (code, signal) => resolve((serverExit = { code, signal }))),
  );
}
process.on("exit", () => server && !serverExit && server.kill("SIGKILL"));
const watchdog = setTimeout(() => {
  console.error("crash: giving up after 5 minutes");
  process.exit(1);
}, 5 * 60 * 1000);
watchdog.unref();

const waitForHealth = () => waitUntilHealthy(baseUrl, () => serverExit, 30_000);

// The session cookie of the manager account the test signs in as (sessions outlive restarts).
let cookie = "";
async function call(method, path, body) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { cookie, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

const today = new Date().toISOString().slice(0, 10);
let failed = false;
const fail = (message) => {
  console.error(`crash: FAILED: ${message}`);
  failed = true;
};

try {
  // The demo stylists (and one demo client), before the server starts.
  const seeded = spawn(bin, ["seed", "--days", "0", "--clients", "1"], {
    cwd: work,
    env: { ...process.env, ENGAGE_DB: join(work, "engage.db"), RUST_LOG: "warn" },
    stdio: "inherit",
  });
  const seedCode = await new Promise((resolve) => seeded.once("exit", resolve));
  if (seedCode !== 0) throw new Error(`engage seed exited with ${seedCode}`);
  const password = `crash-test-${Date.now()}`;
  const account = spawn(bin, ["user", "add", "--email", "crash@engage.example", "--role", "manager"], {
    cwd: work,
    env: { ...process.env, ENGAGE_DB: join(work, "engage.db"), RUST_LOG: "warn" },
    stdio: ["pipe", "inherit", "inherit"],
  });
  account.stdin.end(password);
  const accountCode = await new Promise((resolve) => account.once("exit", resolve));
  if (accountCode !== 0) throw new Error(`engage user add exited with ${accountCode}`);
  const stylist = "st-maya";
  start();
  await waitForHealth();
  const signIn = await fetch(`${baseUrl}/signin`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ email: "crash@engage.example", password }),
  });
  cookie = (signIn.headers.get("set-cookie") || "").split(";")[0];
  if (!cookie.startsWith("engage_session=") || cookie === "engage_session=") throw new Error(`sign-in failed: ${signIn.status} ${signIn.headers.get("location")}`);

  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const { status, body } = await call("POST", "/api/v1/clients", {
      name: `Crash Client ${i}`,
      email: `crash.${i}@example.com`,
      stylist_id: stylist,
      profile: { email_opt_in: true },
    });
    if (status !== 201) throw new Error(`creating a client answered ${status}: ${JSON.stringify(body)}`);
    clients.push(body.id);
  }
  log(`${CLIENTS} clients created; sending ${UPDATES} updates with ${KILLS} kills (seed ${seed})`);

  // Kill points: after these many answered updates, SIGKILL and restart.
  const killAt = Array.from({ length: KILLS }, () => Math.floor(random() * UPDATES)).sort((a, b) => a - b);
  const accepted = new Map(clients.map((id) => [id, []]));
  let sent = 0;
  let answered = 0;
  let refused = 0;
  let restarting = null;

  async function restart() {
    server.kill("SIGKILL");
    await server.exited;
    start();
    await waitForHealth();
  }

  async function sender() {
    while (sent < UPDATES) {
      if (restarting) {
        await restarting;
        continue;
      }
      sent += 1;
      const client = clients[Math.floor(random() * clients.length)];
      const kept = Math.floor(random() * 6);
      try {
        const { status, body } = await call("POST", `/api/v1/clients/${client}/fixes`, {
          delivered_on: today,
          items_sent: 5,
          items_kept: kept,
          order_value: kept === 0 ? "0" : `${kept * 60}.00`,
        });
        if (status === 200) {
          accepted.get(client).push(body.version);
        } else {
          throw new Error(`answered ${status}: ${JSON.stringify(body)}`);
        }
      } catch (error) {
        // Killed mid-request: not accepted. Anything else is a failure of the test.
        if (!restarting && !serverExit) fail(`an update failed while the server was up: ${error.message}`);
        refused += 1;
      }
      answered += 1;
      if (killAt.length && answered >= killAt[0] && !restarting) {
        killAt.shift();
        // Kill a random few milliseconds later, while other senders are mid-request. The
        // restart is claimed at once, so two senders passing kill points together cannot
        // start two servers (one would outlive the test).
        const delay = Math.floor(random() * 15);
        restarting = new Promise((r) => setTimeout(r, delay))
          .then(restart)
          .finally(() => (restarting = null));
        await restarting;
      }
    }
  }
  await Promise.all(Array.from({ length: SENDERS }, sender));
  const acceptedCount = [...accepted.values()].reduce((n, v) => n + v.length, 0);
  log(`${acceptedCount} updates accepted, ${refused} cut off by a kill`);

  // Let the pipeline drain.
  const deadline = Date.now() + 60_000;
  let figures;
  while (Date.now() < deadline) {
    figures = (await call("GET", "/readyz")).body;
    const q = figures.events_queue;
    if (figures.feed_lag === 0 && q.visible === 0 && q.in_flight === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  log(`pipeline figures at the end: ${JSON.stringify(figures)}`);
  if (figures.feed_lag !== 0 || figures.events_queue.visible !== 0 || figures.events_queue.in_flight !== 0) {
    fail("the queue or the change feed did not drain within 60 s");
  }
  if (figures.events_queue.dead_letters !== 0) fail(`${figures.events_queue.dead_letters} dead letters`);

  let scoreChanges = 0;
  for (const client of clients) {
    const { body: report } = await call("GET", `/api/v1/clients/${client}/score?limit=500`);
    const versions = report.client_version;
    const history = report.history;
    scoreChanges += history.length;
    if (history.length !== versions) {
      fail(`client ${client} is at version ${versions} but has ${history.length} score changes`);
    }
    if (new Set(history.map((h) => h.event_id)).size !== history.length) fail(`client ${client} has a repeated event`);
    for (const version of accepted.get(client)) {
      if (version > versions) fail(`client ${client}: accepted version ${version} is not stored`);
    }
    if (new Set(accepted.get(client)).size !== accepted.get(client).length) {
      fail(`client ${client}: two accepted updates got the same version`);
    }
    const { body: emails } = await call("GET", `/api/v1/clients/${client}/emails`);
    const pending = emails.filter((e) => e.status === "drafted").length;
    if (pending > 1) fail(`client ${client} has ${pending} drafts awaiting review`);
  }
  log(`${scoreChanges} score changes for ${clients.length} clients, one per stored version`);
} catch (error) {
  fail(error.stack || error.message);
}

if (server && !serverExit) {
  server.kill("SIGTERM");
  const { code, signal } = await Promise.race([
    server.exited,
    new Promise((r) => setTimeout(() => r({ code: null, signal: "timeout" }), 15_000)),
  ]);
  if (code !== 0) fail(`server did not stop cleanly on SIGTERM (code ${code}, signal ${signal})`);
}
if (failed) {
  console.error(`crash: server log follows (${serverLog})`);
  console.error(readFileSync(serverLog, "utf8").split("\n").slice(-40).join("\n"));
} else {
  log("passed");
}
process.exit(failed ? 1 : 0);
