// Engage's pages: the dashboard at /app/, the compose pane at /app/compose and the message pane at
// /app/read, in Outlook's task pane (opened by the manifest with ?host=outlook) or in a plain browser.

import "./style.css";
import { ApiError, newApi, type RetryStatus } from "./api";
import { composePage } from "./compose";
import type { Ctx } from "./ctx";
import { dashboardPage } from "./dashboard";
import { field, h, replace } from "./dom";
import { startLive, type Alert, type LiveState } from "./live";
import { messagePage } from "./message";
import { inOutlook, loadOutlook, type Outlook } from "./office";
import { storedUser, storeUser, type Session } from "./session";
import { showToast } from "./toast";

interface Config {
  local: boolean;
}

function byId(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el;
}

function banner(s: RetryStatus): void {
  const el = byId("banner");
  if (!s.message) {
    el.hidden = true;
    replace(el);
    return;
  }
  const retry = h("button", { type: "button", class: "secondary" }, "Retry now");
  if (s.retryNow) retry.addEventListener("click", s.retryNow);
  replace(el, h("span", {}, s.message), " ", s.retryNow ? retry : null);
  el.hidden = false;
}

/** askEmail asks, once, who the salesperson is in local mode; Engage checks the address. */
function askEmail(main: HTMLElement, suggestion: string): Promise<string> {
  return new Promise((resolve) => {
    const email = h("input", { type: "email", name: "email", required: true, autocomplete: "email", value: suggestion });
    const err = h("p", { class: "error", role: "alert" });
    const form = h(
      "form",
      { class: "signin" },
      h("h1", {}, "Who are you?"),
      h("p", {}, "Engage runs in local mode: it believes the address you give. It is kept in this browser."),
      field("Your email", email),
      err,
      h("button", { type: "submit", class: "primary" }, "Continue"),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const api = newApi({ user: email.value.trim(), outlook: false }, banner);
      try {
        const r = await api.query<{ me: { email: string } }>(`query Me { me { email } }`);
        resolve(r.me.email);
      } catch (e) {
        replace(err, e instanceof ApiError ? `Engage did not accept that address: ${e.message}` : String(e));
      }
    });
    replace(main, form);
    email.focus();
  });
}

async function boot(): Promise<void> {
  const main = byId("main");
  let config: Config = { local: true };
  try {
    const res = await fetch("/app/config.json");
    if (res.ok) config = (await res.json()) as Config;
  } catch {
    // Assume local mode; the API will say otherwise.
  }
  let outlook: Outlook | undefined;
  if (inOutlook()) {
    try {
      outlook = await loadOutlook();
    } catch (e) {
      replace(main, h("p", { class: "error" }, `Outlook could not be reached: ${String(e)}`));
      return;
    }
  }
  const session: Session = { user: "", outlook: Boolean(outlook), token: outlook?.token };
  if (!session.token) {
    if (!config.local) {
      replace(main, h("h1", {}, "Open Engage from Outlook"), h("p", {}, "This Engage signs you in through Microsoft 365: use the Engage add-in in Outlook."));
      return;
    }
    session.user = storedUser() || (await askEmail(main, outlook?.user ?? ""));
    storeUser(session.user);
  }
  for (const el of document.querySelectorAll<HTMLElement>("[data-local-only]")) el.hidden = !config.local;
  const who = byId("who");
  if (session.user) {
    const change = h("button", { type: "button", class: "link" }, "Change");
    change.addEventListener("click", () => {
      storeUser("");
      location.reload();
    });
    replace(who, `Signed in as ${session.user} `, change);
  }

  const api = newApi(session, banner);
  const listeners = new Set<(a: Alert) => void>();
  const ctx: Ctx = {
    api,
    session,
    outlook,
    local: config.local,
    main,
    onAlert: (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
  const liveLabel: Record<LiveState, string> = {
    connecting: "Live alerts: connecting…",
    connected: "Live alerts: on",
    reconnecting: "Live alerts: reconnecting…",
  };
  const live = byId("live");
  void startLive({
    session,
    api,
    onState: (s) => {
      live.textContent = liveLabel[s];
      live.dataset.state = s;
    },
    onAlert: (a) => {
      showToast(byId("toasts"), a);
      for (const fn of listeners) fn(a);
    },
  });

  const path = location.pathname.replace(/^\/app\/?/, "").replace(/\/$/, "");
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    if (new URL(a.href).pathname.replace(/\/$/, "") === location.pathname.replace(/\/$/, "")) a.setAttribute("aria-current", "page");
    if (outlook) a.search = location.search; // stay in Outlook mode across pages
  }
  switch (path) {
    case "compose":
      composePage(ctx);
      break;
    case "read":
    case "message":
      messagePage(ctx);
      break;
    default:
      dashboardPage(ctx);
  }
}

void boot();
