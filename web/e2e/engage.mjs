// Starting and stopping a real Engage (`go run ./cmd/engage`) for the browser tests, and a GraphQL helper.

import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";

const repo = path.resolve(import.meta.dirname, "..", "..");

/** freePort asks the kernel for a port nobody listens on. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * startEngage runs Engage (`go run ./cmd/engage`, or the binary named by $ENGAGE_BIN) in its own process
 * group on port with its data in dataDir, and waits until it is ready.
 */
export async function startEngage({ port, dataDir, admins = "" }) {
  const base = `http://127.0.0.1:${port}`;
  const [cmd, args] = process.env.ENGAGE_BIN ? [process.env.ENGAGE_BIN, []] : ["go", ["run", "./cmd/engage"]];
  const child = spawn(cmd, args, {
    cwd: repo,
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: {
      ...process.env,
      ENGAGE_ADDR: `127.0.0.1:${port}`,
      ENGAGE_PUBLIC_URL: base,
      ENGAGE_DATA_DIR: dataDir,
      ENGAGE_ADMINS: admins,
      ENGAGE_SHUTDOWN_GRACE: "2s",
    },
  });
  let log = "";
  child.stderr.on("data", (b) => {
    log = (log + b.toString()).slice(-20000);
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 240_000; // the first go run compiles Engage
  for (;;) {
    const gone = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 250))]);
    if (gone) throw new Error(`engage exited (${JSON.stringify(gone)}) before it was ready:\n${log}`);
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      process.kill(-child.pid, "SIGKILL");
      throw new Error(`engage was not ready in time:\n${log}`);
    }
  }
  return {
    base,
    log: () => log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(-child.pid, "SIGTERM");
      const t = setTimeout(() => process.kill(-child.pid, "SIGKILL"), 20_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** gql calls Engage's GraphQL API as user and fails on any error. */
export async function gql(base, user, query, variables = {}) {
  const res = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Engage-User": user },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  if (body.errors) throw new Error(`${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/** launchChromium starts Debian's Chromium (or $CHROMIUM) headless for the tests. */
export function launchChromium(chromium) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** signIn opens /app in a fresh context as user and waits for the live connection. */
export async function signIn(browser, base, user) {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10_000);
  await page.goto(`${base}/app/`);
  await page.getByLabel("Your email").fill(user);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByText(`Signed in as ${user}`).waitFor();
  await page.locator("#live[data-state=connected]").waitFor();
  return page;
}

/** localInput formats a date as a datetime-local input wants it, in this machine's zone (the browser's). */
export function localInput(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
