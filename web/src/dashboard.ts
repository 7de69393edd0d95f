// The dashboard: the caller's engagement summary as KPI tiles, their followed messages (searchable),
// and their unread alerts.

import type { Ctx } from "./ctx";
import { field, h, replace } from "./dom";
import { percent, when } from "./format";

interface Summary {
  followedEmails: number;
  opens: number;
  clicks: number;
  replies: number;
  openRate: number;
  clickRate: number;
  replyRate: number;
  medianTimeToFirstOpenSeconds: number | null;
}
interface Row {
  id: string;
  subject: string;
  createdAt: string;
  following: boolean;
  status: string;
  recipients: Array<{ email: string }>;
  kpis: { opens: number; clicks: number; replies: number };
}
interface Page {
  messages: { edges: Array<{ node: Row }>; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
}

function duration(s: number | null): string {
  if (s === null) return "—";
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

export function dashboardPage(ctx: Ctx): () => void {
  const tiles = h("div", { class: "tiles", role: "group", "aria-label": "Your engagement" });
  const search = h("input", { type: "search", name: "search", autocomplete: "off" });
  const rows = h("tbody");
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Show more");
  const alertList = h("ul", { class: "alerts" });
  let after: string | null = null;
  let seq = 0;

  const loadSummary = async () => {
    const r = await ctx.api.query<{ engagementSummary: Summary }>(
      `query Summary { engagementSummary { followedEmails opens clicks replies openRate clickRate replyRate medianTimeToFirstOpenSeconds } }`,
    );
    const s = r.engagementSummary;
    replace(
      tiles,
      ...[
        ["Followed emails", String(s.followedEmails)],
        ["Opened", percent(s.openRate)],
        ["Clicked", percent(s.clickRate)],
        ["Replied", percent(s.replyRate)],
        ["Time to first open (median)", duration(s.medianTimeToFirstOpenSeconds)],
      ].map(([label, value]) => h("div", { class: "tile" }, h("span", { class: "tile-value" }, value), h("span", { class: "tile-label" }, label))),
    );
  };
  const loadMessages = async (reset: boolean) => {
    const mine = ++seq;
    if (reset) after = null;
    const r = await ctx.api.query<Page>(
      `query Messages($s: String, $after: String) { messages(filter: { search: $s }, first: 20, after: $after) {
        edges { node { id subject createdAt following status recipients { email } kpis { opens clicks replies } } }
        pageInfo { hasNextPage endCursor } } }`,
      { s: search.value.trim() || null, after },
    );
    if (mine !== seq) return;
    if (reset) rows.replaceChildren();
    for (const { node: m } of r.messages.edges) {
      rows.append(
        h(
          "tr",
          {},
          h("th", { scope: "row" }, h("a", { href: `/app/read?id=${encodeURIComponent(m.id)}` }, m.subject || "(no subject)")),
          h("td", {}, m.recipients.map((x) => x.email).join(", ")),
          h("td", {}, when(m.createdAt)),
          h("td", {}, m.following ? m.status.toLowerCase() : `${m.status.toLowerCase()}, not followed`),
          h("td", {}, m.kpis.opens),
          h("td", {}, m.kpis.clicks),
          h("td", {}, m.kpis.replies),
        ),
      );
    }
    if (rows.childElementCount === 0) rows.append(h("tr", {}, h("td", { colspan: "7" }, "No followed emails yet: compose one.")));
    after = r.messages.pageInfo.endCursor;
    more.hidden = !r.messages.pageInfo.hasNextPage;
  };
  const loadAlerts = async () => {
    const r = await ctx.api.query<{ alerts: { edges: Array<{ node: { id: string; kind: string; at: string; recipient: string | null; message: { id: string; subject: string } } }> } }>(
      `query Unread { alerts(unreadOnly: true, first: 10) { edges { node { id kind at recipient message { id subject } } } } }`,
    );
    replace(alertList);
    for (const { node: a } of r.alerts.edges) {
      const read = h("button", { type: "button", class: "link", "aria-label": `Mark read: ${a.message.subject || "(no subject)"}` }, "Mark read");
      read.addEventListener("click", async () => {
        await ctx.api.query(`mutation Read($ids: [ID!]!) { markAlertsRead(ids: $ids) }`, { ids: [a.id] });
        void loadAlerts();
      });
      alertList.append(
        h("li", {}, `${when(a.at)}: ${a.kind.replace(/_/g, " ").toLowerCase()} `, a.recipient ? `by ${a.recipient} ` : "", "on ",
          h("a", { href: `/app/read?id=${encodeURIComponent(a.message.id)}` }, a.message.subject || "(no subject)"), " ", read),
      );
    }
    if (!alertList.childElementCount) alertList.append(h("li", {}, "No unread alerts."));
  };

  let debounce: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void loadMessages(true), 300);
  });
  more.addEventListener("click", () => void loadMessages(false));

  replace(
    ctx.main,
    h("h1", {}, "Dashboard"),
    tiles,
    h("h2", {}, "Your followed emails"),
    field("Search subjects and recipients", search),
    h("table", { class: "messages" },
      h("thead", {}, h("tr", {}, ...["Subject", "To", "Created", "State", "Opens", "Clicks", "Replies"].map((t) => h("th", { scope: "col" }, t)))),
      rows),
    more,
    h("h2", {}, "Unread alerts"),
    alertList,
  );
  const all = () => Promise.all([loadSummary(), loadMessages(true), loadAlerts()]);
  void all();
  const stop = ctx.onAlert(() => void all());
  return stop;
}
