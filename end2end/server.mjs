// Helpers shared by the end-to-end runners: a free loopback port, waiting for a started
// engage server to answer /healthz, and starting a moto_server.

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const freePort = () =>
  new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });

// Resolves once `${baseUrl}/healthz` answers 200; rejects if `exited()` reports the server
// gone, or after `deadlineMs`.
export async function waitForHealth(baseUrl, exited, deadlineMs) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    const exit = exited();
    if (exit) throw new Error(`server exited early: ${JSON.stringify(exit)}`);
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server did not become healthy within ${deadlineMs / 1000} s`);
}

// Starts `motoServer` (moto's AWS stand-in) on a free loopback port and resolves once it
// answers; the returned `kill()` stops it.
// It runs through moto_serialized.py with the venv's python (beside `motoServer`), which
// keeps moto's transaction rollback from losing other requests' writes.
export async function startMoto(motoServer) {
  const port = await freePort();
  const python = join(dirname(motoServer), "python");
  const wrapper = join(dirname(fileURLToPath(import.meta.url)), "..", "cloud", "moto_serialized.py");
  const moto = spawn(python, [wrapper, "-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  let exit = null;
  moto.once("exit", (code, signal) => (exit = { code, signal }));
  moto.once("error", (error) => (exit = { error: error.message }));
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exit) throw new Error(`${motoServer} exited early: ${JSON.stringify(exit)}; run scripts/setup.sh`);
    try {
      await fetch(endpoint);
      return { endpoint, kill: () => exit || moto.kill("SIGKILL") };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  moto.kill("SIGKILL");
  throw new Error(`${motoServer} did not answer within 60 s`);
}
