// Helpers shared by the end-to-end runners: a free loopback port, and waiting for a
// started engage server to answer /healthz.

import { createServer } from "node:net";

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
