// Runs the browser tests against a freshly started release server on a temporary database.
//
//   ENGAGE_BIN=/path/to/engage node end2end/run.mjs
//
// Starts `engage serve` on a free loopback port, waits for /healthz, runs every
// tests/*.test.mjs with node's test runner (BASE_URL tells them where), then stops the
// server with SIGTERM and checks it shut down cleanly. Screenshots go to end2end/artifacts/.

import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, openSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, waitForHealth } from "./server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const bin = process.env.ENGAGE_BIN;
if (!bin) {
  console.error("ENGAGE_BIN must name the release engage binary");
  process.exit(2);
}

const port = await freePort();
const work = mkdtempSync(join(tmpdir(), "engage-e2e-"));
const artifacts = join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });
const serverLog = join(artifacts, "server.log");
const baseUrl = `http://127.0.0.1:${port}`;

// Run from an unrelated directory: the binary must find its own assets.
const server = spawn(bin, ["serve"], {
  cwd: work,
  env: { ...process.env, ENGAGE_DB: join(work, "engage.db"), ENGAGE_ADDR: `127.0.0.1:${port}`, RUST_LOG: "info" },
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
  const tests = readdirSync(join(here, "tests"))
    .filter((f) => f.endsWith(".test.mjs"))
    .map((f) => join(here, "tests", f));
  const runner = spawn(process.execPath, ["--test", "--test-concurrency=1", ...tests], {
    env: {
      ...process.env,
      BASE_URL: baseUrl,
      ARTIFACTS: artifacts,
      // Written by the server on first start (demo data), beside its database.
      ACCOUNTS: join(work, "demo-accounts.txt"),
      OUTBOX: join(work, "data", "outbox"),
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
