// The message pane: one followed message's KPI tiles, link table with click-through rates, a chart of
// interactions over time, the timeline with devices and machine labels, and its reminders. It refreshes
// when a live alert is about this message.

import { ApiError } from "./api";
import type { Ctx } from "./ctx";
import { drawChart } from "./chart";
import { field, h, replace } from "./dom";
import { device, interactionKind, localInput, percent, reminderKinds, when, type Device } from "./format";

interface Message {
  id: string;
  subject: string;
  createdAt: string;
  following: boolean;
  notFollowedReason: string | null;
  individual: boolean;
  status: string;
  sendError: string | null;
  sentAt: string | null;
  scheduledAt: string | null;
  recipients: Array<{ email: string; kind: string }>;
  kpis: {
    opens: number;
    uniqueOpens: number;
    firstOpenedAt: string | null;
    lastOpenedAt: string | null;
    clicks: number;
    uniqueClicks: number;
    attachmentOpens: number;
    replies: number;
    machineOpens: number;
    machineClicks: number;
  };
  attachments: Array<{ name: string; size: number; followed: boolean; note: string | null }>;
  links: Array<{ index: number; url: string; clicks: number; uniqueClicks: number; clickThroughRate: number }>;
  interactions: {
    edges: Array<{
      node: {
        id: string;
        kind: string;
        at: string;
        recipient: { email: string } | null;
        url: string | null;
        device: Device;
        machine: boolean;
        machineReason: string | null;
      };
    }>;
    pageInfo: { hasNextPage: boolean };
  };
}
interface Reminder {
  id: string;
  kind: string;
  at: string;
  state: string;
  reason: string | null;
}

const query = `query Message($id: ID!) {
  message(id: $id) {
    id subject createdAt following notFollowedReason individual status sendError sentAt scheduledAt
    recipients { email kind }
    kpis { opens uniqueOpens firstOpenedAt lastOpenedAt clicks uniqueClicks attachmentOpens replies machineOpens machineClicks }
    links { index url clicks uniqueClicks clickThroughRate }
    attachments { name size followed note }
    interactions(first: 200) { edges { node { id kind at recipient { email } url device { type os client } machine machineReason } } pageInfo { hasNextPage } }
  }
  reminders(messageId: $id) { id kind at state reason }
}`;

function tile(label: string, value: string | number, note?: string): HTMLElement {
  const cls = typeof value === "string" && value.length > 6 ? "tile-value small" : "tile-value";
  return h("div", { class: "tile" }, h("span", { class: cls }, value), h("span", { class: "tile-label" }, label),
    note ? h("span", { class: "tile-note" }, note) : null);
}

/** messagePage shows the message with id, or inside Outlook the followed message matching the open item. */
export function messagePage(ctx: Ctx): () => void {
  let id = new URLSearchParams(location.search).get("id") ?? "";
  const view = h("div", { class: "message" });
  const status = h("p", { class: "status", "aria-live": "polite" });
  replace(ctx.main, h("h1", {}, "Engagement"), status, view);
  let freeChart: (() => void) | undefined;
  // Redrawn on every load: the heading, the figures and the lists. The forms (a new send time, a new
  // reminder) are built once and kept, so a refresh does not wipe what is being typed in them.
  const head = h("div", {});
  const figures = h("div", {});
  let schedule: Part | undefined;
  let reminderPart: Part | undefined;

  const render = (m: Message, reminders: Reminder[]) => {
    freeChart?.();
    if (!schedule || !reminderPart) {
      schedule = scheduleSection(ctx, m.id, () => void load());
      reminderPart = reminderSection(ctx, m.id, () => void load());
      replace(view, head, schedule.el, figures, reminderPart.el);
    }
    const k = m.kpis;
    const canvas = h("canvas", { width: "600", height: "240" });
    const timeline = h(
      "table",
      { class: "timeline" },
      h("caption", {}, "Interactions, newest first"),
      h("thead", {}, h("tr", {}, ...["When", "What", "Who", "Device", "By"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        ...m.interactions.edges.map(({ node: i }) =>
          h(
            "tr",
            { class: i.machine ? "machine" : "", "data-kind": i.kind },
            h("td", {}, when(i.at)),
            h("td", {}, interactionKind(i.kind), i.url ? h("span", { class: "hint block" }, i.url) : null),
            h("td", {}, i.recipient?.email ?? "a recipient"),
            h("td", {}, device(i.device)),
            h("td", {}, i.machine ? h("span", { class: "badge badge-muted", title: i.machineReason ?? "" }, `Machine${i.machineReason ? `: ${i.machineReason}` : ""}`) : "Person"),
          ),
        ),
      ),
    );
    const links = h(
      "table",
      { class: "links" },
      h("caption", {}, "Links"),
      h("thead", {}, h("tr", {}, ...["Link", "Clicks", "Unique", "Click-through"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...m.links.map((l) => h("tr", {}, h("td", { class: "url" }, l.url), h("td", {}, l.clicks), h("td", {}, l.uniqueClicks), h("td", {}, percent(l.clickThroughRate))))),
    );
    replace(
      head,
      h("h2", {}, m.subject || "(no subject)"),
      h("p", { class: "meta" },
        `To ${m.recipients.map((r) => r.email).join(", ")} · ${m.status === "SENT" ? `sent ${when(m.sentAt)}` : m.status === "SCHEDULED" ? `scheduled for ${when(m.scheduledAt)}` : m.status.toLowerCase()}`,
        m.individual ? " · sent individually" : ""),
      m.sendError
        ? h("p", { class: "notice send-error" }, m.status === "FAILED" ? `Not sent: ${m.sendError}` : `Not sent yet: ${m.sendError}`)
        : m.status === "FAILED" ? h("p", { class: "notice send-error" }, "Not sent.") : null,
      m.following ? null : notFollowed(ctx, m, () => void load()),
    );
    schedule.update(m, reminders);
    replace(
      figures,
      h("div", { class: "tiles", role: "group", "aria-label": "Key figures" },
        tile("Opens", k.opens, `${k.uniqueOpens} unique`),
        tile("Clicks", k.clicks, `${k.uniqueClicks} unique`),
        tile("Attachment opens", k.attachmentOpens),
        tile("Replies", k.replies),
        tile("First opened", when(k.firstOpenedAt)),
        tile("Machine opens and clicks", k.machineOpens + k.machineClicks, "not counted above"),
      ),
      h("h3", {}, "Over time"),
      m.interactions.edges.length ? h("div", { class: "chart" }, canvas) : h("p", { class: "hint" }, "Nothing yet."),
      h("h3", {}, "Timeline"),
      m.interactions.edges.length ? timeline : h("p", { class: "hint", id: "timeline-empty" }, "No interactions yet."),
      m.links.length ? links : null,
      m.attachments.length
        ? h("section", {}, h("h3", {}, "Attachments"), h("ul", { class: "attachments" }, ...m.attachments.map((a) =>
            h("li", {}, a.name, a.followed ? " · followed (opens recorded)" : " · attached, not followed", a.note ? ` · ${a.note}` : ""))))
        : null,
    );
    reminderPart.update(m, reminders);
    if (m.interactions.edges.length) {
      freeChart = drawChart(canvas, m.interactions.edges.map((e) => e.node));
    }
  };

  const load = async () => {
    if (!id && ctx.outlook?.readSubject !== undefined) {
      const r = await ctx.api.query<{ messages: { edges: Array<{ node: { id: string; subject: string } }> } }>(
        `query Find($s: String!) { messages(filter: { search: $s }, first: 5) { edges { node { id subject } } } }`,
        { s: ctx.outlook.readSubject },
      );
      id = r.messages.edges.find((e) => e.node.subject === ctx.outlook?.readSubject)?.node.id ?? "";
      if (!id) {
        replace(status, "Engage does not follow this email.");
        return;
      }
    }
    if (!id) {
      replace(status, "Choose a message on the ", h("a", { href: "/app/" }, "dashboard"), ".");
      return;
    }
    try {
      const r = await ctx.api.query<{ message: Message; reminders: Reminder[] }>(query, { id });
      replace(status, `Updated ${when(new Date().toISOString())}`);
      render(r.message, r.reminders);
    } catch (e) {
      replace(status, e instanceof ApiError && e.code === "NOT_FOUND" ? "No such message among yours." : `Not loaded: ${String(e)}`);
    }
  };
  void load();
  const stopAlerts = ctx.onAlert((a) => {
    if (a.message.id === id) void load();
  });
  const poll = setInterval(() => {
    if (document.visibilityState === "visible") void load();
  }, 30_000);
  return () => {
    stopAlerts();
    clearInterval(poll);
    freeChart?.();
  };
}

function notFollowed(ctx: Ctx, m: Message, reload: () => void): HTMLElement {
  const out = h("p", { class: "status" });
  const retry = h("button", { type: "button", class: "secondary" }, "Retry follow");
  retry.addEventListener("click", async () => {
    try {
      const r = await ctx.api.query<{ retryFollow: { following: boolean; notFollowedReason: string | null } }>(
        `mutation Retry($id: ID!) { retryFollow(id: $id) { following notFollowedReason } }`,
        { id: m.id },
      );
      if (r.retryFollow.following) reload();
      else replace(out, `Still not followed: ${r.retryFollow.notFollowedReason ?? ""}`);
    } catch (e) {
      replace(out, e instanceof Error ? e.message : String(e));
    }
  });
  return h("div", { class: "notice" }, h("p", {}, `Not followed${m.notFollowedReason ? `: ${m.notFollowedReason}` : "."}`), retry, out);
}

/** Part is a piece of the page built once: update shows the message as last loaded. */
interface Part {
  el: HTMLElement;
  update: (m: Message, reminders: Reminder[]) => void;
}

/**
 * scheduleSection moves a scheduled send to another time, or cancels it (the message is then a draft
 * again). It shows only while the send is scheduled; the time typed is kept until it is used.
 */
function scheduleSection(ctx: Ctx, messageId: string, reload: () => void): Part {
  const at = h("input", { type: "datetime-local", name: "sendAt", required: true });
  let typed = false;
  at.addEventListener("input", () => (typed = true));
  const err = h("p", { class: "error", role: "alert" });
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel send");
  const form = h("form", { class: "inline", novalidate: true }, field("New send time", at),
    h("button", { type: "submit", class: "secondary" }, "Reschedule"), cancel);
  const run = async (q: string, vars: Record<string, unknown>) => {
    replace(err);
    try {
      await ctx.api.query(q, vars);
      typed = false;
      reload();
    } catch (e) {
      replace(err, e instanceof Error ? e.message : String(e));
    }
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = new Date(at.value);
    if (!at.value || Number.isNaN(t.getTime()) || t.getTime() <= Date.now()) {
      replace(err, "Choose a send time in the future.");
      at.focus();
      return;
    }
    void run(`mutation Reschedule($id: ID!, $at: Time!) { rescheduleSend(id: $id, at: $at) { id } }`, { id: messageId, at: t.toISOString() });
  });
  cancel.addEventListener("click", () => {
    void run(`mutation CancelSend($id: ID!) { cancelScheduledSend(id: $id) { id } }`, { id: messageId });
  });
  const el = h("section", { class: "schedule", hidden: true }, h("h3", {}, "Scheduled send"),
    h("p", { class: "hint" }, "Move it to another time, or cancel it: the message then stays a draft and is not sent."), form, err);
  const update = (m: Message) => {
    el.hidden = m.status !== "SCHEDULED";
    at.min = localInput(new Date(Date.now() + 60_000));
    if (!typed) at.value = localInput(m.scheduledAt ? new Date(m.scheduledAt) : new Date(Date.now() + 3600_000));
  };
  return { el, update };
}

/** reminderSection lists the message's reminders and sets new ones, due after the send when it is still to come. */
function reminderSection(ctx: Ctx, messageId: string, reload: () => void): Part {
  const kind = h("select", { name: "kind" }, ...reminderKinds.map(([v, label]) => h("option", { value: v }, `Remind me ${label}`)));
  const at = h("input", { type: "datetime-local", name: "at", required: true });
  let typed = false;
  at.addEventListener("input", () => (typed = true));
  const err = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "inline" }, field("Reminder", kind), field("At", at), h("button", { type: "submit", class: "secondary" }, "Set reminder"), err);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    replace(err);
    try {
      await ctx.api.query(`mutation Set($id: ID!, $kind: ReminderKind!, $at: Time!) { setReminder(messageId: $id, kind: $kind, at: $at) { id } }`, {
        id: messageId,
        kind: kind.value,
        at: new Date(at.value).toISOString(),
      });
      typed = false;
      reload();
    } catch (e) {
      replace(err, e instanceof Error ? e.message : String(e));
    }
  });
  const list = h("div", {});
  const update = (m: Message, reminders: Reminder[]) => {
    // Engage refuses a reminder that is not after the send, so the earliest and default times follow it.
    const base = m.status === "SCHEDULED" && m.scheduledAt ? new Date(Math.max(Date.parse(m.scheduledAt), Date.now())) : new Date();
    at.min = localInput(new Date(base.getTime() + 60_000));
    if (!typed) at.value = localInput(new Date(base.getTime() + 2 * 86400_000));
    const ul = h("ul", { class: "reminders" });
    for (const r of reminders) {
      const label = reminderKinds.find(([v]) => v === r.kind)?.[1] ?? r.kind;
      const li = h("li", {}, `Remind me ${label} ${when(r.at)}: ${r.state.toLowerCase()}${r.reason ? ` (${r.reason.toLowerCase()})` : ""}`);
      if (r.state === "PENDING") {
        const cancel = h("button", { type: "button", class: "link" }, "Cancel");
        cancel.addEventListener("click", async () => {
          await ctx.api.query(`mutation Cancel($id: ID!) { cancelReminder(id: $id) { id } }`, { id: r.id });
          reload();
        });
        li.append(" ", cancel);
      }
      ul.append(li);
    }
    replace(list, reminders.length ? ul : h("p", { class: "hint" }, "None."));
  };
  return { el: h("section", {}, h("h3", {}, "Reminders"), list, form), update };
}
