// What every page is given.

import type { Api } from "./api";
import type { Outlook } from "./office";
import type { Session } from "./session";
import type { Alert } from "./live";

export interface Ctx {
  api: Api;
  session: Session;
  /** Present inside Outlook. */
  outlook?: Outlook;
  /** Local mode: no tenant, so there is a local outbox to open mail from. */
  local: boolean;
  main: HTMLElement;
  /** Pages hear live alerts to refresh what they show; the returned function stops listening. */
  onAlert: (fn: (a: Alert) => void) => () => void;
}
