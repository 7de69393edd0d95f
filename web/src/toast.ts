// Toasts for live alerts: announced politely to screen readers, each with a link and a close button.

import { h } from "./dom";
import { device } from "./format";
import type { Alert } from "./live";

function text(a: Alert): string {
  const who = a.recipient ?? "A recipient";
  const subject = a.message.subject || "(no subject)";
  switch (a.kind) {
    case "FIRST_OPEN":
      return `${who} opened “${subject}” for the first time, on ${device(a.device)}.`;
    case "REPLY_RECEIVED":
      return `${who} replied to “${subject}”.`;
    case "REMINDER":
      return `Reminder: follow up on “${subject}”.`;
    case "LINK_CLICKED":
      return `${who} clicked ${a.url ?? "a link"} in “${subject}”.`;
    case "ATTACHMENT_OPENED":
      return `${who} opened an attachment of “${subject}”.`;
    case "ALERT_WITHDRAWN":
      return `Not a person after all: the ${a.url ? "click" : "open"} on “${subject}” ${a.recipient ? `by ${a.recipient} ` : ""}was ${machine(a.machineReason)}.`;
    default:
      return `${a.kind}: “${subject}”.`;
  }
}

function machine(reason: string | null): string {
  switch (reason) {
    case "PREFETCH":
      return "a mail server fetching images ahead";
    case "APPLE_PRIVACY_PROXY":
      return "Apple's Mail Privacy Protection";
    case "SECURITY_SCANNER":
      return "a security scanner";
    default:
      return "a machine";
  }
}

/** showToast puts an alert on screen for a while; hovering or focusing keeps it until it is closed. */
export function showToast(region: HTMLElement, a: Alert): void {
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss alert" }, "×");
  const toast = h(
    "div",
    { class: `toast toast-${a.kind.toLowerCase()}`, role: "status", "data-alert": a.kind },
    h("p", {}, text(a)),
    h("a", { href: `/app/read?id=${encodeURIComponent(a.message.id)}` }, "See the timeline"),
    close,
  );
  let held = false;
  const remove = () => toast.remove();
  close.addEventListener("click", remove);
  toast.addEventListener("mouseenter", () => (held = true));
  toast.addEventListener("focusin", () => (held = true));
  region.prepend(toast);
  setTimeout(() => {
    if (!held) remove();
  }, 15_000);
}
