// Runs the browser tests against a freshly started release server.
//
//   ENGAGE_BIN=/path/to/engage node end2end/run.mjs                # SQLite: tests/*.test.mjs
//   ENGAGE_BIN=/path/to/engage node end2end/run.mjs --backend aws  # AWS: tests/ and aws/
//
// Embedded: `engage serve` on a temporary database. AWS: a moto_server on a free port
// (from ENGAGE_VENV, as scripts/setup.sh installs it), `engage aws bootstrap` against it,
// then `engage serve --backend aws`. Either way it waits for /healthz, runs the suite with
// node's test runner (BASE_URL tells them where), then stops the server with SIGTERM and
// checks it shut down cleanly. Screenshots go to end2end/artifacts/.

import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, openSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, startMoto, waitForHealth } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const bin = process.env.ENGAGE_BIN;
if (!bin) {
  console.error("ENGAGE_BIN must name the release engage binary");
  process.exit(2);
}

const aws = process.argv.includes("--backend") && process.argv[process.argv.indexOf("--backend") + 1] === "aws";
const port = await freePort();
const work = mkdtempSync(join(tmpdir(), "engage-e2e-"));
const artifacts = join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });
const serverLog = join(artifacts, aws ? "server-aws.log" : "server.log");
const baseUrl = `http://127.0.0.1:${port}`;

// The suites sign in as the demo accounts and work on the demo book, on either backend.
// Welcomes are never held out (the suites expect each new client's draft); half the
// win-backs are, so the outcomes panel has both groups to compare.
let env = {
  ...process.env,
  ENGAGE_ADDR: `127.0.0.1:${port}`,
  ENGAGE_DEMO_DATA: "true",
  ENGAGE_HOLDOUT: "welcome=0,win_back=0.5",
  RUST_LOG: process.env.E2E_RUST_LOG || "info",
};
let serveArgs = ["serve"];
let moto = null;
if (aws) {
  moto = await startMoto(join(process.env.ENGAGE_VENV || join(process.env.HOME, ".cache/engage/venv"), "bin/moto_server"));
  process.on("exit", () => moto.kill());
  env = {
    ...env,
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    ENGAGE_AWS_PREFIX: "e2e",
    // Clients as of now, without a replayed past: moto copies the whole table on every
    // transaction, so a long replay takes too long there (server/tests/replay.rs replays
    // one past on both backends and compares them).
    ENGAGE_DEMO_DAYS: "0",
    ENGAGE_DEMO_CLIENTS: "40",
  };
  const bootstrap = spawnSync(bin, ["aws", "bootstrap"], { cwd: work, env, encoding: "utf8" });
  if (bootstrap.status !== 0) {
    console.error(`end2end: engage aws bootstrap failed:\n${bootstrap.stderr}`);
    process.exit(1);
  }
  serveArgs = ["serve", "--backend", "aws"];
} else {
  env.ENGAGE_DB = join(work, "engage.db");
}

// Run from an unrelated directory: the binary must find its own assets.
const server = spawn(bin, serveArgs, {
  cwd: work,
  env,
  stdio: ["ignore", openSync(serverLog, "w"), openSync(serverLog, "a")],
});
let serverExit = null;
const exited = new Promise((resolve) => server.once("exit", (code, signal) => resolve((serverExit = { code, signal }))));
const stopServer = () => serverExit || server.kill("SIGKILL");
process.on("exit", stopServer);
// Never leave a server behind, whatever happens to the tests.
const watchdog = setTimeout(() => {
  console.error("end2end: giving up after 10 minutes");
  stopServer();
  process.exit(1);
}, 10 * 60 * 1000);
watchdog.unref();

let failed = false;
try {
  await waitForHealth(baseUrl, () => serverExit, 60_000);
  // The whole suite runs on both backends; aws/ adds what only the AWS backend has.
  const suites = aws ? ["tests", "aws"] : ["tests"];
  const tests = suites.flatMap((suite) =>
    readdirSync(join(here, suite))
      .filter((f) => f.endsWith(".test.mjs"))
      // E2E_ONLY=a11y runs only the files whose names contain it (while working on them).
      .filter((f) => !process.env.E2E_ONLY || f.includes(process.env.E2E_ONLY))
      .map((f) => join(here, suite, f)),
  );
  const runner = spawn(process.execPath, ["--test", "--test-concurrency=1", ...tests], {
    env: {
      ...process.env,
      BASE_URL: baseUrl,
      ARTIFACTS: artifacts,
      // Written by the server on first start (demo data), beside its database.
      ACCOUNTS: aws ? join(work, "data", "demo-accounts-aws.txt") : join(work, "demo-accounts.txt"),
      OUTBOX: join(work, "data", "outbox"),
      BACKEND: aws ? "aws" : "embedded",
    },
    stdio: "inherit",
  });
  const code = await new Promise((resolve) => runner.once("exit", (c) => resolve(c ?? 1)));
  failed = code !== 0;
} catch (error) {
  console.error(`end2end: ${error.message}`);
  failed = true;
}

server.kill("SIGTERM");
const { code, signal } = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ code: null, signal: "timeout" }), 15_000))]);
if (code !== 0) {
  console.error(`end2end: server did not shut down cleanly on SIGTERM (code ${code}, signal ${signal})`);
  failed = true;
}
if (failed) {
  console.error(`end2end: failed; server log follows (${serverLog})`);
  console.error(readFileSync(serverLog, "utf8").split("\n").slice(-60).join("\n"));
}
process.exit(failed ? 1 : 0);
