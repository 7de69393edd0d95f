// The compose form's contents, saved on every keystroke so that a reload, a crash or a lost connection
// never loses what the salesperson typed. pendingId remembers a message Engage already stored, so that
// retrying a send does not store it twice.

export interface Draft {
  to: string;
  cc: string;
  bcc: string;
  subject: string;
  body: string;
  html: boolean;
  individual: boolean;
  follow: boolean;
  templateId: string;
  category: string;
  when: "now" | "later";
  slot: string;
  at: string;
  reminderKind: string;
  reminderAt: string;
  pendingId: string;
}

export function emptyDraft(): Draft {
  return {
    to: "",
    cc: "",
    bcc: "",
    subject: "",
    body: "",
    html: false,
    individual: false,
    follow: true,
    templateId: "",
    category: "",
    when: "now",
    slot: "",
    at: "",
    reminderKind: "",
    reminderAt: "",
    pendingId: "",
  };
}

const key = (user: string) => `engage.draft.${user}`;

export function loadDraft(user: string): Draft {
  try {
    const raw = localStorage.getItem(key(user));
    if (raw) return { ...emptyDraft(), ...(JSON.parse(raw) as Partial<Draft>) };
  } catch {
    // A draft that cannot be read is not worth failing the page for.
  }
  return emptyDraft();
}

export function saveDraft(user: string, d: Draft): void {
  try {
    localStorage.setItem(key(user), JSON.stringify(d));
  } catch {
    // Storage full or refused: the form still holds the text.
  }
}

export function clearDraft(user: string): void {
  try {
    localStorage.removeItem(key(user));
  } catch {
    // Nothing to clear.
  }
}
