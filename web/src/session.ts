// Who is using the page and how Engage is reached: in local mode the salesperson's email, asked once and
// kept in localStorage, goes in the X-Engage-User header; inside Outlook with single sign-on, a bearer token.

export const localHeader = "X-Engage-User";
const userKey = "engage.user";

export interface Session {
  /** The salesperson's email in local mode; empty with single sign-on. */
  user: string;
  /** A bearer token provider when Outlook signs the user in. */
  token?: () => Promise<string>;
  /** Inside Outlook (office.js loaded), as opposed to a plain browser at /app. */
  outlook: boolean;
}

export function storedUser(): string {
  try {
    return localStorage.getItem(userKey) ?? "";
  } catch {
    return "";
  }
}

export function storeUser(email: string): void {
  try {
    if (email) localStorage.setItem(userKey, email);
    else localStorage.removeItem(userKey);
  } catch {
    // Private windows may refuse storage: the session still works until the page closes.
  }
}

/** headers are what authenticates an HTTP request. */
export async function headers(s: Session): Promise<Record<string, string>> {
  if (s.token) return { Authorization: `Bearer ${await s.token()}` };
  return s.user ? { [localHeader]: s.user } : {};
}

/** initPayload is what authenticates a websocket's connection_init. */
export async function initPayload(s: Session): Promise<Record<string, string>> {
  return headers(s);
}
