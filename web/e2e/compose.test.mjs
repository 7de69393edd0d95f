// End to end, as app.test.mjs: what the compose pane and the message page say and do when a send, a
// reminder or an upload goes wrong, and the controls for a scheduled send. Run: npm run e2e (after npm run build).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { freePort, gql, launchChromium, localInput, signIn, startEngage } from "./engage.mjs";

const rep = "writer@contoso.com";
let engage, browser, dataDir;

before(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "engage-e2e-"));
  engage = await startEngage({ port: await freePort(), dataDir });
  browser = await launchChromium(chromium);
});

after(async () => {
  await browser?.close();
  await engage?.stop();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
});

/** bySubject lists the writer's messages whose subject matches s. */
async function bySubject(s) {
  const r = await gql(engage.base, rep, `query($s: String) { messages(filter: { search: $s }) { edges { node { id status scheduledAt
    attachments { name followed } } } } }`, { s });
  return r.messages.edges.map((e) => e.node);
}

/** compose opens the compose pane with a recipient, a subject and a body typed in. */
async function compose(to, subject, body = "Hello") {
  const page = await signIn(browser, engage.base, rep);
  await page.goto(`${engage.base}/app/compose`);
  await page.getByLabel("To", { exact: true }).fill(to);
  await page.getByLabel("Subject", { exact: true }).fill(subject);
  await page.getByLabel("Body", { exact: true }).fill(body);
  await page.getByText("Every recipient can be followed.").waitFor();
  return page;
}

const sendButton = (page) => page.getByRole("button", { name: "Send", exact: true });

test("a reminder Engage refuses once the mail is sent: the page says Sent, why the reminder is missing, and the mail goes once", async () => {
  const page = await compose("carl@fabrikam.com", "Unfollowed, with a reminder");
  await page.getByLabel("Don't follow").check();
  // Engage does not know the opens of a message it does not follow, so it refuses this reminder.
  await page.getByLabel("Reminder", { exact: true }).selectOption("NOT_OPENED_BY");
  await sendButton(page).click();
  await page.locator(".sent-status", { hasText: "Sent." }).waitFor();
  const alert = page.getByRole("alert").filter({ hasText: "The reminder could not be set" });
  assert.match(await alert.innerText(), /not followed/);
  assert.match(await alert.getByRole("link").getAttribute("href"), /^\/app\/read\?id=/);
  assert.equal(await page.getByText("Not sent").count(), 0);
  assert.equal(await page.locator("form.compose").count(), 0, "no form left to send it again");
  const ms = await bySubject("Unfollowed, with a reminder");
  assert.deepEqual(ms.map((m) => m.status), ["SENT"]);
  await page.context().close();
});

test("send later: the reminder defaults to after the send time, and one before it is refused before anything is sent", async () => {
  const page = await compose("dora@fabrikam.com", "Scheduled, with a reminder");
  await page.getByLabel("Send later").check();
  const sendAt = new Date(Date.now() + 5 * 86400_000);
  sendAt.setHours(10, 0, 0, 0);
  await page.getByLabel("Or at").fill(localInput(sendAt));
  await page.getByLabel("Reminder", { exact: true }).selectOption("NO_REPLY_BY");
  const remindAt = page.getByLabel("Remind at");
  assert.ok(new Date(await remindAt.inputValue()) > sendAt, "the default reminder is after the send time");
  assert.ok(new Date(await remindAt.getAttribute("min")) > sendAt, "the earliest reminder is after the send time");

  await remindAt.fill(localInput(new Date(sendAt.getTime() - 86400_000)));
  await sendButton(page).click();
  await page.locator(".error", { hasText: "The reminder must be after the send time" }).waitFor();
  assert.equal((await bySubject("Scheduled, with a reminder")).length, 0, "nothing stored or sent");

  await remindAt.fill(localInput(new Date(sendAt.getTime() + 2 * 86400_000)));
  await sendButton(page).click();
  await page.locator(".sent-status", { hasText: "Scheduled for" }).waitFor();
  const [m] = await bySubject("Scheduled, with a reminder");
  assert.equal(m.status, "SCHEDULED");
  assert.equal(new Date(m.scheduledAt).getTime(), sendAt.getTime());
  const r = await gql(engage.base, rep, `query($id: ID) { reminders(messageId: $id) { kind state } }`, { id: m.id });
  assert.deepEqual(r.reminders, [{ kind: "NO_REPLY_BY", state: "PENDING" }]);
  await page.context().close();
});

/** refuseSends makes Engage's answer to sendMessage a refusal, until the returned function is called. */
async function refuseSends(page, message) {
  const refuse = (route) =>
    route.request().postData()?.includes("sendMessage")
      ? route.fulfill({ json: { errors: [{ message, extensions: { code: "BAD_USER_INPUT" } }] } })
      : route.continue();
  await page.route("**/graphql", refuse);
  return () => page.unroute("**/graphql", refuse);
}

test("files changed after a failed send: a removed file is not sent, and one whose Follow box changed is sent once, as now set", async () => {
  const page = await compose("erin@fabrikam.com", "Files after a failed send");
  await page.getByLabel("Attach files").setInputFiles([
    { name: "keep.txt", mimeType: "text/plain", buffer: Buffer.from("kept\n") },
    { name: "drop.txt", mimeType: "text/plain", buffer: Buffer.from("dropped\n") },
  ]);
  const allow = await refuseSends(page, "Microsoft 365 is busy");
  await sendButton(page).click();
  await page.locator(".error", { hasText: "Not sent: Microsoft 365 is busy" }).waitFor();
  await allow();
  let [m] = await bySubject("Files after a failed send");
  assert.deepEqual(m.attachments, [{ name: "keep.txt", followed: true }, { name: "drop.txt", followed: true }], "uploaded before the refusal");

  await page.getByRole("button", { name: "Remove drop.txt" }).click();
  await page.getByRole("button", { name: "Remove drop.txt" }).waitFor({ state: "detached" });
  await page.getByRole("checkbox", { name: "Follow (a tracked link): keep.txt", exact: true }).uncheck();
  await sendButton(page).click();
  await page.locator(".sent-status", { hasText: "Sent." }).waitFor();
  [m] = await bySubject("Files after a failed send");
  assert.deepEqual(m.attachments, [{ name: "keep.txt", followed: false }]);
  await page.context().close();
});

test("The body is HTML ticked after a failed send: the retried send stores and sends the body as HTML", async () => {
  const page = await compose("fay@fabrikam.com", "HTML after a failed send", "<p>Hi <b>Fay</b></p>");
  const allow = await refuseSends(page, "Microsoft 365 is busy");
  await sendButton(page).click();
  await page.locator(".error", { hasText: "Not sent: Microsoft 365 is busy" }).waitFor();
  await allow();
  await page.getByLabel("The body is HTML").check();
  await sendButton(page).click();
  await page.locator(".sent-status", { hasText: "Sent." }).waitFor();
  const [m] = await bySubject("HTML after a failed send");
  const r = await gql(engage.base, rep, `{ outbox(first: 100) { messageId html } }`);
  const mail = r.outbox.find((o) => o.messageId === m.id);
  assert.match(mail.html, /<b>Fay<\/b>/);
  assert.doesNotMatch(mail.html, /&lt;b&gt;/);
  await page.context().close();
});

test("a send time saved in an old draft that no slot on screen offers is not used", async () => {
  const page = await signIn(browser, engage.base, rep);
  const stale = new Date(Date.now() + 10 * 86400_000);
  stale.setMinutes(13, 0, 0);
  const key = `engage.draft.${rep}`;
  const draft = { to: "gus@fabrikam.com", subject: "Stale slot", body: "Hello", when: "later", slot: stale.toISOString(), at: "" };
  await page.evaluate(([k, v]) => localStorage.setItem(k, JSON.stringify(v)), [key, draft]);
  await page.goto(`${engage.base}/app/compose`);
  await page.locator("input[name=slot]").first().waitFor();
  assert.equal(await page.locator("input[name=slot]:checked").count(), 0);
  await sendButton(page).click();
  await page.locator(".error", { hasText: "Choose a time to send, or send now." }).waitFor();
  assert.equal((await bySubject("Stale slot")).length, 0, "nothing sent or scheduled");
  assert.equal(await page.evaluate((k) => JSON.parse(localStorage.getItem(k)).slot, key), "");
  await page.context().close();
});

test("a send that FAILED keeps the form and the draft and says why; Send tries the same message again; the message page shows why", async () => {
  const page = await compose("hal@fabrikam.com", "Failed once", "Hello Hal");
  const reason = "Microsoft 365 refused to send from your mailbox.";
  // Engage answers FAILED as delivery does when Microsoft 365 refuses for good.
  const fail = (route) => {
    const body = JSON.parse(route.request().postData() ?? "{}");
    if (!body.query?.includes("sendMessage")) return route.continue();
    return route.fulfill({ json: { data: { sendMessage: { id: body.variables.id, subject: "Failed once", following: true,
      notFollowedReason: null, status: "FAILED", sendError: reason, scheduledAt: null, renders: [] } } } });
  };
  await page.route("**/graphql", fail);
  await sendButton(page).click();
  await page.locator(".error", { hasText: `Not sent: ${reason.replace(/\.$/, "")}` }).waitFor();
  await page.unroute("**/graphql", fail);
  await page.reload();
  assert.equal(await page.getByLabel("Subject", { exact: true }).inputValue(), "Failed once", "the draft is kept");
  await sendButton(page).click();
  await page.locator(".sent-status", { hasText: "Sent." }).waitFor();
  const ms = await bySubject("Failed once");
  assert.deepEqual(ms.map((m) => m.status), ["SENT"], "the retry sent the message stored the first time");

  // The message page says why a message was not sent (here as Engage would answer for a FAILED one).
  const failed = async (route) => {
    if (!route.request().postData()?.includes("query Message(")) return route.continue();
    const res = await route.fetch();
    const json = await res.json();
    Object.assign(json.data.message, { status: "FAILED", sendError: reason, sentAt: null });
    return route.fulfill({ response: res, json });
  };
  await page.route("**/graphql", failed);
  await page.goto(`${engage.base}/app/read?id=${encodeURIComponent(ms[0].id)}`);
  await page.locator(".send-error", { hasText: `Not sent: ${reason}` }).waitFor();
  await page.context().close();
});

/** until polls fn until it answers true, for up to 10 s. */
async function until(fn, what) {
  for (const deadline = Date.now() + 10_000; !(await fn()); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("a scheduled send is rescheduled and then cancelled on the message page", async () => {
  const r = await gql(engage.base, rep, `mutation($i: FollowMessageInput!) { followMessage(input: $i) { id } }`,
    { i: { subject: "To reschedule", text: "Hello Ivy", recipients: [{ email: "ivy@fabrikam.com", kind: "TO" }] } });
  const id = r.followMessage.id;
  const at = new Date(Date.now() + 4 * 86400_000);
  at.setHours(11, 0, 0, 0);
  await gql(engage.base, rep, `mutation($id: ID!, $at: Time) { sendMessage(id: $id, at: $at) { status } }`, { id, at: at.toISOString() });
  const status = async () => (await gql(engage.base, rep, `query($id: ID!) { message(id: $id) { status scheduledAt } }`, { id })).message;

  const page = await signIn(browser, engage.base, rep);
  await page.goto(`${engage.base}/app/read?id=${encodeURIComponent(id)}`);
  const later = new Date(at.getTime() + 86400_000);
  later.setHours(15, 30, 0, 0);
  await page.getByLabel("New send time").fill(localInput(later));
  await page.getByRole("button", { name: "Reschedule" }).click();
  await until(async () => new Date((await status()).scheduledAt).getTime() === later.getTime(), "the new send time");

  await page.getByRole("button", { name: "Cancel send" }).click();
  await until(async () => (await status()).status === "DRAFT", "the cancelled send");
  await page.locator(".meta", { hasText: "draft" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Cancel send" }).count(), 0);
  await page.context().close();
});

test("a reminder being typed on the message page survives the refresh a live alert brings", async () => {
  const r = await gql(engage.base, rep, `mutation($i: FollowMessageInput!) { followMessage(input: $i) { id } }`,
    { i: { subject: "Open me", text: "Hello Jo", recipients: [{ email: "jo@fabrikam.com", kind: "TO" }] } });
  const id = r.followMessage.id;
  await gql(engage.base, rep, `mutation($id: ID!) { sendMessage(id: $id) { status } }`, { id });
  const mail = (await gql(engage.base, rep, `{ outbox(first: 100) { messageId url } }`)).outbox.find((o) => o.messageId === id);

  const page = await signIn(browser, engage.base, rep);
  await page.goto(`${engage.base}/app/read?id=${encodeURIComponent(id)}`);
  await page.locator("#timeline-empty").waitFor();
  await page.getByLabel("Reminder", { exact: true }).selectOption("ANYWAY");
  const typed = localInput(new Date(Date.now() + 6 * 86400_000));
  await page.getByLabel("At", { exact: true }).fill(typed);

  const recipient = await browser.newContext({ userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36" });
  await (await recipient.newPage()).goto(new URL(mail.url, engage.base).href);
  await page.locator("table.timeline tr[data-kind=OPENED]").waitFor(); // the alert redrew the page
  assert.equal(await page.getByLabel("At", { exact: true }).inputValue(), typed);
  assert.equal(await page.getByLabel("Reminder", { exact: true }).inputValue(), "ANYWAY");
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "at", "the field keeps the focus");
  // The dashboard's button for the alert starts with the words it shows.
  await page.getByRole("link", { name: "Dashboard" }).click();
  await page.getByRole("button", { name: "Mark read: Open me", exact: true }).click();
  await page.getByText("No unread alerts.").waitFor();
  await recipient.close();
  await page.context().close();
});
