// Outlook's side: office.js comes from Microsoft's CDN and is loaded only when the manifest opened the
// page (?host=outlook), so /app works in any browser without it. Only the few calls Engage needs are typed.

const officeScript = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js";

interface AsyncResult<T> {
  status: "succeeded" | "failed";
  value: T;
  error?: { message: string };
}
type Callback<T> = (r: AsyncResult<T>) => void;
interface EmailAddress {
  emailAddress: string;
  displayName: string;
}
interface Recipients {
  getAsync(cb: Callback<EmailAddress[]>): void;
}
interface ComposeItem {
  to: Recipients;
  cc: Recipients;
  bcc: Recipients;
  subject: { getAsync(cb: Callback<string>): void };
  body: {
    getAsync(coercion: string, cb: Callback<string>): void;
    setAsync(data: string, options: { coercionType: string }, cb: Callback<void>): void;
  };
}
interface ReadItem {
  subject: string;
  internetMessageId?: string;
}
interface OfficeGlobal {
  onReady(): Promise<unknown>;
  context: { mailbox: { item: unknown; userProfile: { emailAddress: string } } };
  auth?: { getAccessToken(options: { allowSignInPrompt: boolean; allowConsentPrompt: boolean }): Promise<string> };
}

export interface Outlook {
  user: string;
  token?: () => Promise<string>;
  compose?: () => Promise<{ to: string[]; cc: string[]; bcc: string[]; subject: string; html: string }>;
  setBody?: (html: string) => Promise<void>;
  readSubject?: string;
}

function promised<T>(call: (cb: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    call((r) => (r.status === "succeeded" ? resolve(r.value) : reject(new Error(r.error?.message ?? "Outlook refused")))),
  );
}

/** inOutlook says whether the manifest opened this page. */
export function inOutlook(): boolean {
  return new URLSearchParams(location.search).get("host") === "outlook";
}

/** loadOutlook loads office.js and answers what the add-in needs from the open item. */
export async function loadOutlook(): Promise<Outlook> {
  await new Promise<void>((resolve, reject) => {
    const s = document.createElement("script");
    s.src = officeScript;
    s.onload = () => resolve();
    s.onerror = () => reject(new Error("office.js could not be loaded"));
    document.head.append(s);
  });
  const office = (window as unknown as { Office: OfficeGlobal }).Office;
  await office.onReady();
  const mailbox = office.context.mailbox;
  const out: Outlook = { user: mailbox.userProfile.emailAddress };
  if (new URLSearchParams(location.search).get("sso") === "1" && office.auth) {
    const a = office.auth;
    out.token = () => a.getAccessToken({ allowSignInPrompt: true, allowConsentPrompt: true });
  }
  const item = mailbox.item as Partial<ComposeItem & ReadItem>;
  if (item.body && typeof item.subject === "object") {
    const c = item as ComposeItem;
    const emails = (rs: EmailAddress[]) => rs.map((r) => r.emailAddress);
    out.compose = async () => ({
      to: emails(await promised<EmailAddress[]>((cb) => c.to.getAsync(cb))),
      cc: emails(await promised<EmailAddress[]>((cb) => c.cc.getAsync(cb))),
      bcc: emails(await promised<EmailAddress[]>((cb) => c.bcc.getAsync(cb))),
      subject: await promised<string>((cb) => c.subject.getAsync(cb)),
      html: await promised<string>((cb) => c.body.getAsync("html", cb)),
    });
    out.setBody = (html) => promised<void>((cb) => c.body.setAsync(html, { coercionType: "html" }, cb));
  } else if (typeof item.subject === "string") {
    out.readSubject = item.subject;
  }
  return out;
}
