// The compose pane: recipients and body, templates ranked by how they do, the follow toggle with the
// reasons some recipients cannot be followed, individual sending, send now or at a recommended time,
// attachments and a follow-up reminder.

import { ApiError } from "./api";
import type { Ctx } from "./ctx";
import { clearDraft, loadDraft, saveDraft, type Draft } from "./draft";
import { field, h, replace, uid } from "./dom";
import { addresses, blockReason, localInput, reminderKinds, when } from "./format";
import { attachmentsPanel, uploadAll } from "./attachments";
import { templatesPanel } from "./templates";

interface Followability {
  allowed: string[];
  blocked: Array<{ email: string; reason: string }>;
}
interface Slot {
  at: string;
  score: number;
  explanation: string;
  exploring: boolean;
}
interface Sent {
  id: string;
  subject: string;
  following: boolean;
  notFollowedReason: string | null;
  status: string;
  sendError: string | null;
  scheduledAt: string | null;
  renders: Array<{ html: string; tracked: boolean; recipients: Array<{ email: string }> }>;
}

const messageFields = `id subject following notFollowedReason status sendError scheduledAt renders { html tracked recipients { email } }`;

export function composePage(ctx: Ctx): void {
  const user = ctx.session.user || "outlook";
  const d: Draft = loadDraft(user);
  const save = () => saveDraft(user, d);

  const text = (name: keyof Draft, attrs: Record<string, string> = {}) => {
    const el = h("input", { type: "text", name, value: String(d[name]), autocomplete: "off", ...attrs });
    el.addEventListener("input", () => {
      (d[name] as string) = el.value;
      d.pendingId = "";
      save();
    });
    return el;
  };
  const to = text("to", { inputmode: "email" });
  const cc = text("cc", { inputmode: "email" });
  const bcc = text("bcc", { inputmode: "email" });
  const subject = text("subject");
  const body = h("textarea", { name: "body", rows: "8" });
  body.value = d.body;
  body.addEventListener("input", () => {
    d.body = body.value;
    d.pendingId = "";
    save();
  });
  const isHTML = h("input", { type: "checkbox", name: "html", checked: d.html });
  isHTML.addEventListener("change", () => {
    d.html = isHTML.checked;
    d.pendingId = ""; // the stored message has the body as it was read then
    save();
  });

  // Following: the toggle, why some recipients cannot be followed, and individual sending.
  const followStatus = h("p", { class: "status", id: uid("follow-status"), "aria-live": "polite" });
  const followRadio = h("input", { type: "radio", name: "follow", value: "yes", checked: d.follow });
  const dontRadio = h("input", { type: "radio", name: "follow", value: "no", checked: !d.follow });
  followRadio.setAttribute("aria-describedby", followStatus.id);
  for (const r of [followRadio, dontRadio]) {
    r.addEventListener("change", () => {
      d.follow = followRadio.checked;
      d.pendingId = "";
      save();
    });
  }
  const individual = h("input", { type: "checkbox", name: "individual", checked: d.individual });
  individual.addEventListener("change", () => {
    d.individual = individual.checked;
    d.pendingId = "";
    save();
    void checkFollow();
  });
  const retryFollowButton = h("button", { type: "button", class: "secondary" }, "Retry follow");
  let checkSeq = 0;
  let forcedOff = false; // Follow was turned off because nobody could be followed; undone when someone can
  const allowFollow = () => {
    followRadio.disabled = false;
    if (forcedOff) {
      forcedOff = false;
      followRadio.checked = true;
      d.follow = true;
      save();
    }
  };
  const checkFollow = async () => {
    const all = [...addresses(d.to), ...addresses(d.cc), ...addresses(d.bcc)];
    const seq = ++checkSeq;
    if (all.length === 0) {
      allowFollow();
      replace(followStatus, "Add recipients to see who can be followed.");
      return;
    }
    replace(followStatus, "Checking who can be followed…");
    try {
      const r = await ctx.api.query<{ followability: Followability }>(
        `query Followability($r: [String!]!) { followability(recipients: $r) { allowed blocked { email reason } } }`,
        { r: all },
      );
      if (seq !== checkSeq) return;
      const f = r.followability;
      if (f.blocked.length === 0) {
        allowFollow();
        replace(followStatus, "Every recipient can be followed.");
        return;
      }
      const reasons = h("ul", {}, ...f.blocked.map((b) => h("li", {}, h("strong", {}, b.email), `: ${blockReason(b.reason)}`)));
      if (f.allowed.length === 0) {
        followRadio.disabled = true;
        forcedOff ||= d.follow;
        dontRadio.checked = true;
        d.follow = false;
        save();
        replace(followStatus, "This email cannot be followed:", reasons);
      } else {
        allowFollow();
        replace(
          followStatus,
          d.individual
            ? "These recipients will get an untracked copy:"
            : "Sent together, this email will not be followed because of these recipients (send individually to follow the others):",
          reasons,
        );
      }
    } catch (e) {
      if (seq !== checkSeq) return;
      replace(followStatus, e instanceof ApiError ? `Check the addresses: ${e.message}` : String(e));
    }
  };
  let debounce: ReturnType<typeof setTimeout> | undefined;
  for (const el of [to, cc, bcc]) {
    el.addEventListener("input", () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => void checkFollow(), 400);
    });
  }

  // When: now, or later at a recommended slot or a time of one's own.
  const nowRadio = h("input", { type: "radio", name: "when", value: "now", checked: d.when === "now" });
  const laterRadio = h("input", { type: "radio", name: "when", value: "later", checked: d.when === "later" });
  const slots = h("div", { class: "slots", "aria-live": "polite" });
  const otherAt = h("input", { type: "datetime-local", name: "at", value: d.at });
  otherAt.addEventListener("input", () => {
    d.at = otherAt.value;
    d.slot = "";
    save();
    syncReminderTime();
    for (const r of slots.querySelectorAll<HTMLInputElement>("input[name=slot]")) r.checked = false;
  });
  const laterBox = h("div", { class: "later" }, slots, field("Or at", otherAt));
  // The recommended times on screen: a slot saved in a draft is sent at only while it is one of them.
  let offered = new Set<string>();
  const showSlots = (shown: string[]) => {
    offered = new Set(shown);
    if (d.slot && !offered.has(d.slot)) {
      d.slot = "";
      save();
      syncReminderTime();
    }
  };
  const showLater = async () => {
    laterBox.hidden = d.when !== "later";
    if (d.when !== "later") return;
    const rs = addresses(d.to).concat(addresses(d.cc), addresses(d.bcc));
    if (rs.length === 0) {
      replace(slots, h("p", { class: "hint" }, "Add recipients to see the best times to send."));
      showSlots([]);
      return;
    }
    replace(slots, h("p", { class: "hint" }, "Finding the best times…"));
    offered = new Set();
    try {
      const r = await ctx.api.query<{ sendTimeRecommendation: Slot[] }>(
        `query Slots($r: [String!]!) { sendTimeRecommendation(recipients: $r, count: 3) { at score explanation exploring } }`,
        { r: rs },
      );
      const group = h("fieldset", { class: "slot-list" }, h("legend", {}, "Recommended times"));
      for (const s of r.sendTimeRecommendation) {
        const radio = h("input", { type: "radio", name: "slot", value: s.at, checked: d.slot === s.at });
        radio.addEventListener("change", () => {
          d.slot = s.at;
          d.at = "";
          otherAt.value = "";
          save();
          syncReminderTime();
        });
        group.append(
          h(
            "label",
            { class: "slot" },
            radio,
            h("span", { class: "slot-at" }, when(s.at)),
            h("span", { class: "slot-score" }, `${s.score.toFixed(2)}× an average hour`),
            s.exploring ? h("span", { class: "badge badge-muted" }, "Exploring") : null,
            h("span", { class: "hint" }, s.explanation),
          ),
        );
      }
      replace(slots, group);
      showSlots(r.sendTimeRecommendation.map((s) => s.at));
    } catch (e) {
      replace(slots, h("p", { class: "error" }, `No recommended times: ${e instanceof Error ? e.message : String(e)}`));
      showSlots([]);
    }
  };
  for (const r of [nowRadio, laterRadio]) {
    r.addEventListener("change", () => {
      d.when = laterRadio.checked ? "later" : "now";
      save();
      syncReminderTime();
      void showLater();
    });
  }

  // Reminder: due after the mail goes out, so its default and earliest time follow the send time.
  const reminderKind = h(
    "select",
    { name: "reminderKind" },
    h("option", { value: "" }, "No reminder"),
    ...reminderKinds.map(([v, label]) => h("option", { value: v }, `Remind me ${label}`)),
  );
  reminderKind.value = d.reminderKind;
  const reminderAt = h("input", { type: "datetime-local", name: "reminderAt", value: d.reminderAt });
  /** sendsAt is when the mail is to go out: a chosen slot, a time of one's own, or null for now. */
  const sendsAt = (): Date | null => {
    if (d.when !== "later") return null;
    const t = d.slot ? new Date(d.slot) : d.at ? new Date(d.at) : null;
    return t && !Number.isNaN(t.getTime()) ? t : null;
  };
  /** syncReminderTime sets the reminder's earliest time, and its default (three days on, at 9:00) while none is typed. */
  const syncReminderTime = () => {
    const base = sendsAt() ?? new Date();
    reminderAt.min = localInput(new Date(base.getTime() + 60_000));
    if (!d.reminderAt) {
      const def = new Date(base.getTime() + 3 * 86400_000);
      def.setHours(9, 0, 0, 0);
      reminderAt.value = localInput(def);
    }
  };
  reminderKind.addEventListener("change", () => {
    d.reminderKind = reminderKind.value;
    reminderAt.disabled = d.reminderKind === "";
    save();
  });
  reminderAt.addEventListener("input", () => {
    d.reminderAt = reminderAt.value;
    save();
  });
  reminderAt.disabled = d.reminderKind === "";
  syncReminderTime();

  const formError = h("div", { class: "error", role: "alert" });
  const sendButton = h("button", { type: "submit", class: "primary" }, "Send");
  const result = h("section", { class: "result", "aria-live": "polite" });

  const attachments = attachmentsPanel(ctx.api, () => d.follow, () => d.pendingId);
  const templates = templatesPanel(ctx, d, (t) => {
    d.templateId = t.id;
    d.subject = t.subject || d.subject;
    d.body = t.html;
    d.html = true;
    subject.value = d.subject;
    body.value = d.body;
    isHTML.checked = true;
    d.pendingId = "";
    save();
  });

  const form = h(
    "form",
    // The form's checks are Engage's own (formError says what is wrong), so the browser's are off.
    { class: "compose", "aria-labelledby": "compose-title", novalidate: true },
    h(
      "fieldset",
      {},
      h("legend", {}, "Message"),
      field("To", to, "Addresses separated by commas."),
      field("Cc", cc),
      field("Bcc", bcc),
      field("Subject", subject),
      field("Body", body),
      h("div", { class: "check" }, isHTML, h("label", { for: (isHTML.id = uid("html")) }, "The body is HTML")),
    ),
    templates,
    h(
      "fieldset",
      {},
      h("legend", {}, "Following"),
      h("div", { class: "radios" },
        h("label", {}, followRadio, " Follow"),
        h("label", {}, dontRadio, " Don't follow"),
      ),
      followStatus,
      retryFollowButton,
      h("div", { class: "check" }, individual, h("label", { for: (individual.id = uid("individual")) },
        "Send individually: one copy per recipient, so every open and click names a person")),
    ),
    attachments.el,
    h(
      "fieldset",
      {},
      h("legend", {}, "When"),
      h("div", { class: "radios" }, h("label", {}, nowRadio, " Send now"), h("label", {}, laterRadio, " Send later")),
      laterBox,
    ),
    h("fieldset", {}, h("legend", {}, "Follow-up"), field("Reminder", reminderKind), field("Remind at", reminderAt)),
    formError,
    h("div", { class: "actions" }, sendButton),
  );

  retryFollowButton.addEventListener("click", async () => {
    if (!d.pendingId) {
      await checkFollow();
      return;
    }
    try {
      const r = await ctx.api.query<{ retryFollow: Sent }>(`mutation Retry($id: ID!) { retryFollow(id: $id) { ${messageFields} } }`, {
        id: d.pendingId,
      });
      replace(followStatus, r.retryFollow.following ? "Followed now." : `Still not followed: ${r.retryFollow.notFollowedReason ?? ""}`);
    } catch (e) {
      replace(followStatus, e instanceof Error ? e.message : String(e));
    }
  });

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void send();
  });

  const send = async () => {
    replace(formError);
    const recipients = [
      ...addresses(d.to).map((email) => ({ email, kind: "TO" })),
      ...addresses(d.cc).map((email) => ({ email, kind: "CC" })),
      ...addresses(d.bcc).map((email) => ({ email, kind: "BCC" })),
    ];
    if (recipients.length === 0) {
      replace(formError, "Add at least one recipient.");
      to.focus();
      return;
    }
    let at: string | null = null;
    if (d.when === "later") {
      at = (offered.has(d.slot) ? d.slot : "") || (d.at ? new Date(d.at).toISOString() : null);
      if (!at) {
        replace(formError, "Choose a time to send, or send now.");
        return;
      }
    }
    // The reminder is checked before anything is sent: Engage refuses one that is not after the send.
    let remindAt: string | null = null;
    if (d.reminderKind) {
      const r = new Date(reminderAt.value);
      const sendTime = at ? new Date(at) : new Date();
      if (!reminderAt.value || Number.isNaN(r.getTime())) {
        replace(formError, "Choose when to be reminded, or choose No reminder.");
      } else if (r.getTime() <= Date.now()) {
        replace(formError, "The reminder time has passed: choose a later one.");
      } else if (at && r.getTime() <= sendTime.getTime()) {
        replace(formError, `The reminder must be after the send time (${when(at)}): choose a later one.`);
      } else {
        remindAt = r.toISOString();
      }
      if (!remindAt) {
        reminderAt.focus();
        return;
      }
    }
    sendButton.disabled = true;
    sendButton.textContent = "Sending…";
    attachments.el.disabled = true; // the files stay as they are while they are uploaded
    let sent: Sent;
    const outlookDraft = Boolean(ctx.outlook?.setBody && !d.individual);
    try {
      if (!d.pendingId) {
        const input: Record<string, unknown> = {
          subject: d.subject,
          recipients,
          individual: d.individual,
          follow: d.follow,
          ...(d.html ? { html: d.body } : { text: d.body }),
          ...(d.templateId ? { templateId: d.templateId } : {}),
        };
        const r = await ctx.api.query<{ followMessage: Sent }>(
          `mutation Follow($input: FollowMessageInput!) { followMessage(input: $input) { ${messageFields} } }`,
          { input },
        );
        d.pendingId = r.followMessage.id;
        save();
      }
      const id = d.pendingId;
      await attachments.settled();
      await uploadAll(ctx.api, id, attachments.files);
      if (outlookDraft) {
        const r = await ctx.api.query<{ message: Sent }>(`query M($id: ID!) { message(id: $id) { ${messageFields} } }`, { id });
        sent = r.message;
        await ctx.outlook!.setBody!(sent.renders[0]?.html ?? d.body);
      } else {
        const r = await ctx.api.query<{ sendMessage: Sent }>(
          `mutation Send($id: ID!, $at: Time) { sendMessage(id: $id, at: $at) { ${messageFields} } }`,
          { id, at },
        );
        sent = r.sendMessage;
      }
    } catch (e) {
      sent = { status: "FAILED", sendError: e instanceof ApiError ? e.message : String(e) } as Sent;
    }
    if (sent.status === "FAILED" && !outlookDraft) {
      // Nothing went out: the form and the draft stay, and Send tries the same stored message again.
      replace(formError, `Not sent: ${(sent.sendError ?? "Engage could not send it").replace(/\.$/, "")}. Correct what is wrong and press Send to try again.`);
      sendButton.disabled = false;
      sendButton.textContent = "Send";
      attachments.el.disabled = false;
      return;
    }
    // The send is done: from here on nothing may say "Not sent", and the button stays off until the form
    // goes, so that a second press cannot send the mail again.
    d.pendingId = "";
    clearDraft(user);
    const reminder = { set: false, at: remindAt ?? "", error: "" };
    if (d.reminderKind && remindAt) {
      try {
        await ctx.api.query(`mutation Remind($id: ID!, $kind: ReminderKind!, $at: Time!) { setReminder(messageId: $id, kind: $kind, at: $at) { id } }`, {
          id: sent.id,
          kind: d.reminderKind,
          at: remindAt,
        });
        reminder.set = true;
      } catch (e) {
        reminder.error = e instanceof Error ? e.message : String(e);
      }
    }
    form.remove();
    await showResult(sent, outlookDraft, reminder);
  };

  const showResult = async (m: Sent, inDraft: boolean, reminder: { set: boolean; at: string; error: string }) => {
    const status = inDraft
      ? "The tracked body is in your draft: press Send in Outlook."
      : m.status === "SCHEDULED"
        ? `Scheduled for ${when(m.scheduledAt)}.`
        : "Sent.";
    const page = `/app/read?id=${encodeURIComponent(m.id)}`;
    const kind = reminderKinds.find(([v]) => v === d.reminderKind)?.[1] ?? d.reminderKind;
    replace(
      result,
      h("h2", {}, "“", m.subject || "(no subject)", "”"),
      h("p", { class: "sent-status" }, status),
      !inDraft && m.status === "SCHEDULED" && m.sendError ? h("p", {}, m.sendError) : null,
      reminder.set ? h("p", {}, `Engage will remind you ${kind} ${when(reminder.at)}.`) : null,
      reminder.error
        ? h("p", { class: "error", role: "alert" }, `The reminder could not be set: ${reminder.error}. `,
            h("a", { href: page }, "Set a reminder on the message's page"))
        : null,
      m.following ? h("p", {}, "Engage follows this email.") : h("p", {}, "Not followed", m.notFollowedReason ? `: ${m.notFollowedReason}` : "."),
      h("p", {}, h("a", { href: page }, "See its engagement")),
      h("p", {}, h("a", { href: "/app/compose" }, "Write another")),
    );
    if (!ctx.local || m.status !== "SENT") return;
    try {
      const r = await ctx.api.query<{ outbox: Array<{ id: string; messageId: string; to: string[]; cc: string[]; bcc: string[]; url: string }> }>(
        `query Outbox { outbox(first: 100) { id messageId to cc bcc url } }`,
      );
      const mine = r.outbox.filter((o) => o.messageId === m.id);
      if (mine.length > 0) {
        result.append(
          h("h3", {}, "Open it as a recipient"),
          h("ul", { class: "outbox-links" },
            ...mine.map((o) => h("li", {}, h("a", { href: o.url, target: "_blank", rel: "noopener", class: "open-as" },
              `Open as ${[...o.to, ...o.cc, ...o.bcc].join(", ")}`)))),
        );
      }
    } catch {
      // The links to the local outbox are a convenience: the mail is sent either way.
    }
  };

  replace(ctx.main, h("h1", { id: "compose-title" }, "Compose"), form, result);
  if (ctx.outlook?.compose) {
    void ctx.outlook.compose().then((c) => {
      if (d.to || d.subject || d.body) return; // the saved draft wins: it is what the user typed here
      d.to = c.to.join(", ");
      d.cc = c.cc.join(", ");
      d.bcc = c.bcc.join(", ");
      d.subject = c.subject;
      d.body = c.html;
      d.html = true;
      to.value = d.to;
      cc.value = d.cc;
      bcc.value = d.bcc;
      subject.value = d.subject;
      body.value = d.body;
      isHTML.checked = true;
      save();
      void checkFollow();
    });
  }
  void checkFollow();
  void showLater();
}
