// Formatting for people: dates, rates, devices and the words for what happened.

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

export function percent(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

export interface Device {
  type: string;
  os: string;
  client: string;
}

export function device(d: Device | null | undefined): string {
  if (!d) return "unknown device";
  const type = d.type === "UNKNOWN" ? "" : d.type.charAt(0) + d.type.slice(1).toLowerCase();
  return [type, d.os, d.client].filter((s) => s && s !== "Other").join(" · ") || "unknown device";
}

const kinds: Record<string, string> = {
  OPENED: "Opened",
  LINK_CLICKED: "Clicked a link",
  ATTACHMENT_OPENED: "Opened an attachment",
  REPLIED: "Replied",
  AUTO_REPLIED: "Auto-replied",
  BOUNCED: "Bounced",
};

export function interactionKind(kind: string): string {
  return kinds[kind] ?? kind;
}

const reasons: Record<string, string> = {
  DO_NOT_ALLOW: "this address asked not to be followed",
  DOMAIN_DO_NOT_ALLOW: "this address's domain asked not to be followed",
  SUPPRESSED_BOUNCE: "mail to this address bounced",
  ENGAGEMENT_DISABLED: "email engagement is turned off for the organisation",
  NO_CONSENT: "the organisation follows only people who agreed, and this one has not",
};

export function blockReason(reason: string): string {
  return reasons[reason] ?? reason;
}

export const reminderKinds: Array<[string, string]> = [
  ["NO_REPLY_BY", "if there is no reply by"],
  ["NOT_OPENED_BY", "if it is not opened by"],
  ["ANYWAY", "in any case on"],
];

/** addresses splits what a person typed into a To, Cc or Bcc box. */
export function addresses(s: string): string[] {
  return s
    .split(/[,;\s]+/)
    .map((a) => a.trim())
    .filter((a) => a.length > 0);
}

/** localInput formats a date for a datetime-local input, in the browser's zone. */
export function localInput(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
