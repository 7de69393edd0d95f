// End to end, in Debian's Chromium driven by playwright-core, against a real Engage started with
// `go run ./cmd/engage`: a salesperson composes and sends in /app, the recipient opens the mail from the
// local outbox in a second browser, the first-open toast arrives within 2 s, and the timeline shows the
// open. Then Engage is stopped mid-send and started again: nothing typed is lost and alerts resume.
// Screenshots go to e2e/out (or $E2E_OUT). Run: npm run e2e (after npm run build).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { freePort, gql, launchChromium, startEngage } from "./engage.mjs";

const require = createRequire(import.meta.url);
const out = process.env.E2E_OUT || path.join(import.meta.dirname, "out");
const rep = "rep@contoso.com";
const admin = "admin@contoso.com";
// The recipient reads webmail in Chrome on Windows: a person, not a scanner.
const recipientAgent =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

let engage, browser, dataDir, port;
const shot = (page, name) => page.screenshot({ path: path.join(out, name), fullPage: true });

before(async () => {
  await fs.mkdir(out, { recursive: true });
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "engage-e2e-"));
  port = await freePort();
  engage = await startEngage({ port, dataDir, admins: admin });
  browser = await launchChromium(chromium);
});

after(async () => {
  await browser?.close();
  await engage?.stop();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
});

/** signIn opens /app as the salesperson, in a context that lets axe-core be injected past the CSP. */
async function signIn() {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 }, bypassCSP: true });
  const page = await ctx.newPage();
  await page.goto(`${engage.base}/app/`);
  await page.getByLabel("Your email").fill(rep);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByText(`Signed in as ${rep}`).waitFor();
  await page.locator("#live[data-state=connected]").waitFor();
  return page;
}

/** accessible fails on axe-core's serious and critical findings (labels, contrast, keyboard, roles). */
async function accessible(page, what) {
  await page.addScriptTag({ path: require.resolve("axe-core/axe.min.js") });
  const r = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
    [],
    `${what}: accessibility violations`,
  );
}

test("compose, send, open as the recipient, first-open toast within 2 s, timeline shows the open", async () => {
  await gql(engage.base, rep, `mutation { createTemplate(input: { name: "Warm intro", category: "Intro",
    subject: "Quarterly offer", html: "<p>Hello,</p><p>See <a href=\\"https://example.com/offer\\">our offer</a>.</p>" }) { id } }`);
  const page = await signIn();
  await accessible(page, "dashboard");

  await page.getByRole("link", { name: "Compose" }).click();
  await page.getByLabel("To", { exact: true }).fill("ann@fabrikam.com");
  await page.getByText("Every recipient can be followed.").waitFor();
  await page.getByLabel("Category").selectOption("Intro");
  await page.getByRole("button", { name: "Use template Warm intro" }).click();
  assert.equal(await page.getByLabel("Subject", { exact: true }).inputValue(), "Quarterly offer");
  assert.match(await page.getByLabel("Body", { exact: true }).inputValue(), /our offer/);
  await page.getByLabel("Send later").check();
  await page.locator("input[name=slot]").first().waitFor();
  assert.equal(await page.locator("input[name=slot]").count(), 3, "three recommended slots");
  await page.getByLabel("Send now").check();
  await page.getByLabel(/Send individually/).check();
  await page.getByLabel("Reminder", { exact: true }).selectOption("NO_REPLY_BY");
  await page.getByLabel("Attach files").setInputFiles({ name: "price-list.txt", mimeType: "text/plain", buffer: Buffer.from("Prices for 2027\n") });
  await page.getByLabel("Follow (a tracked link)").waitFor();
  assert.ok(await page.getByLabel("Follow (a tracked link)").isChecked(), "attachments of a followed email are followed by default");
  await accessible(page, "compose");
  await shot(page, "1-compose.png");

  await page.getByRole("button", { name: "Send", exact: true }).click();
  await page.locator(".sent-status", { hasText: "Sent." }).waitFor();
  const openAs = page.getByRole("link", { name: "Open as ann@fabrikam.com" });
  const mailURL = new URL(await openAs.getAttribute("href"), engage.base).href;
  await shot(page, "2-sent.png");

  // The recipient opens the mail in a browser of their own: its pixel reaches Engage like a mail client's.
  const recipient = await browser.newContext({ userAgent: recipientAgent });
  const mail = await recipient.newPage();
  const toast = page.locator(".toast", { hasText: "ann@fabrikam.com opened “Quarterly offer” for the first time" });
  const start = Date.now();
  const arrived = toast.waitFor({ timeout: 2000 });
  await mail.goto(mailURL);
  await arrived;
  const latency = Date.now() - start;
  console.log(`first-open toast ${latency} ms after the recipient's page started loading`);
  assert.ok(latency < 2000, `toast after ${latency} ms`);
  await shot(mail, "3-recipient.png");
  await shot(page, "4-toast.png");
  // A click within seconds of sending is what a link scanner does: Engage labels it a machine's and keeps
  // it out of the people's counts. (The redirect is not followed: this machine has no internet.)
  const offer = await mail.getByRole("link", { name: "our offer" }).getAttribute("href");
  const click = await recipient.request.get(offer, { maxRedirects: 0 });
  assert.equal(click.status(), 302);

  await toast.getByRole("link", { name: "See the timeline" }).click();
  const opened = page.locator("table.timeline tr[data-kind=OPENED]");
  await opened.first().waitFor();
  const row = await opened.first().innerText();
  assert.match(row, /Opened/);
  assert.match(row, /ann@fabrikam\.com/);
  assert.match(row, /Desktop · Windows · Chrome/);
  const clicked = page.locator("table.timeline tr[data-kind=LINK_CLICKED]");
  await clicked.waitFor();
  assert.match(await clicked.innerText(), /Machine: SECURITY_SCANNER/);
  assert.match(await page.locator("table.links").innerText(), /example\.com\/offer\s+0\s+0\s+0%/);
  assert.match(await page.locator(".tile").filter({ hasText: "Machine opens and clicks" }).innerText(), /^1/);
  assert.match(await page.locator(".tile").filter({ has: page.locator(".tile-label", { hasText: /^Opens$/ }) }).innerText(), /^1/);
  assert.match(await page.locator("ul.reminders").innerText(), /no reply by .*pending/);
  assert.match(await page.locator("ul.attachments").innerText(), /price-list\.txt · followed/);
  await page.locator(".chart canvas").waitFor();
  await accessible(page, "message");
  await shot(page, "5-timeline.png");
  await recipient.close();
  await page.context().close();
});

test("a recipient who asked not to be followed turns Follow off, with the reason", async () => {
  await gql(engage.base, admin, `mutation { setFollowPreference(target: "nobody@tailspin.com", preference: DO_NOT_ALLOW) { target } }`);
  const page = await signIn();
  await page.goto(`${engage.base}/app/compose`);
  await page.getByLabel("To", { exact: true }).fill("nobody@tailspin.com");
  await page.getByText("This email cannot be followed:").waitFor();
  assert.ok(await page.getByLabel("Follow", { exact: true }).isDisabled());
  assert.ok(await page.getByLabel("Don't follow").isChecked());
  assert.match(await page.locator(".status", { hasText: "cannot be followed" }).innerText(), /nobody@tailspin\.com: this address asked not to be followed/);
  await shot(page, "6-blocked.png");
  await page.getByLabel("To", { exact: true }).fill("ann@fabrikam.com");
  await page.getByText("Every recipient can be followed.").waitFor();
  assert.ok(await page.getByLabel("Follow", { exact: true }).isChecked(), "Follow comes back once everyone can be followed");
  await page.context().close();
});

test("Engage stopped mid-send: the form keeps what was typed, the send goes through and alerts resume", async () => {
  const page = await signIn();
  await page.goto(`${engage.base}/app/compose`);
  await page.getByLabel("To", { exact: true }).fill("bob@fabrikam.com");
  await page.getByLabel("Subject", { exact: true }).fill("Following up");
  await page.getByLabel("Body", { exact: true }).fill("Hello Bob,\nare you free on Thursday?");
  await page.reload(); // a reload (or a crash) keeps the draft
  assert.equal(await page.getByLabel("Subject", { exact: true }).inputValue(), "Following up");
  assert.equal(await page.getByLabel("Body", { exact: true }).inputValue(), "Hello Bob,\nare you free on Thursday?");

  await engage.stop();
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await page.locator("#banner", { hasText: "cannot be reached" }).waitFor();
  await page.locator("#live[data-state=reconnecting]").waitFor();
  assert.equal(await page.getByLabel("To", { exact: true }).inputValue(), "bob@fabrikam.com");
  await shot(page, "7-offline.png");

  engage = await startEngage({ port, dataDir, admins: admin });
  await page.getByRole("button", { name: "Retry now" }).click().catch(() => {}); // it may have gone through already
  await page.locator(".sent-status", { hasText: "Sent." }).waitFor({ timeout: 20_000 });
  assert.ok(await page.locator("#banner").isHidden());
  await page.locator("#live[data-state=connected]").waitFor({ timeout: 20_000 });

  const mailURL = new URL(await page.getByRole("link", { name: "Open as bob@fabrikam.com" }).getAttribute("href"), engage.base).href;
  const recipient = await browser.newContext({ userAgent: recipientAgent });
  await (await recipient.newPage()).goto(mailURL);
  await page.locator(".toast", { hasText: "opened “Following up” for the first time" }).waitFor({ timeout: 5000 });
  await shot(page, "8-resumed.png");
  const sent = await gql(engage.base, rep, `{ messages(filter: { search: "Following up" }) { edges { node { id } } } }`);
  assert.equal(sent.messages.edges.length, 1, "the retried send stored the message once");
  await recipient.close();
  await page.context().close();
});
