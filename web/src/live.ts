// Live alerts over graphql-ws: the subscription resumes from the last alert seen after any drop (including
// Engage's 4409 "resync"), and a catch-up listing after each connect covers alerts that arrived while the
// subscription was being set up. Every alert is delivered once, by id.

import { createClient, type Client } from "graphql-ws";
import type { Api } from "./api";
import { initPayload, type Session } from "./session";
import type { Device } from "./format";

export interface Alert {
  id: string;
  kind: string;
  at: string;
  message: { id: string; subject: string };
  recipient: string | null;
  device: Device | null;
  url: string | null;
  machineReason: string | null;
  cursor: string;
}

const alertFields = `id kind at message { id subject } recipient device { type os client } url machineReason cursor`;

export type LiveState = "connecting" | "connected" | "reconnecting";

export interface LiveOptions {
  session: Session;
  api: Api;
  onAlert: (a: Alert) => void;
  onState: (s: LiveState) => void;
}

/** startLive subscribes to the caller's alerts until stop is called. */
export async function startLive(o: LiveOptions): Promise<() => void> {
  const seen = new Set<string>();
  let since: string | null = null;
  try {
    const first = await o.api.query<{ alerts: { edges: Array<{ node: Alert }> } }>(
      `query Baseline { alerts(first: 20) { edges { node { ${alertFields} } } } }`,
    );
    for (const e of first.alerts.edges) seen.add(e.node.id);
    since = first.alerts.edges[0]?.node.cursor ?? null;
  } catch {
    // No baseline: the catch-up after connecting will treat existing alerts as new once, at worst.
  }
  const deliver = (a: Alert) => {
    if (seen.has(a.id)) return;
    seen.add(a.id);
    since = a.cursor;
    o.onAlert(a);
  };
  const catchUp = async () => {
    try {
      const page = await o.api.query<{ alerts: { edges: Array<{ node: Alert }> } }>(
        `query CatchUp { alerts(first: 20) { edges { node { ${alertFields} } } } }`,
      );
      for (const e of [...page.alerts.edges].reverse()) deliver(e.node);
    } catch {
      // The subscription carries on; the next connect catches up again.
    }
  };

  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql`;
  let stopped = false;
  let client: Client | undefined;
  let unsubscribe: (() => void) | undefined;
  let failures = 0;
  const connect = () => {
    if (stopped) return;
    o.onState(failures === 0 ? "connecting" : "reconnecting");
    client = createClient({
      url,
      connectionParams: () => initPayload(o.session),
      lazy: false,
      keepAlive: 10_000,
      retryAttempts: Number.MAX_SAFE_INTEGER,
      shouldRetry: () => true,
      retryWait: async (retries) => {
        await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** retries, 8000)));
      },
      on: {
        connected: () => {
          failures = 0;
          o.onState("connected");
          void catchUp();
        },
        closed: () => {
          if (!stopped) o.onState("reconnecting");
        },
      },
    });
    unsubscribe = client.subscribe<{ alerts: Alert }>(
      { query: `subscription Alerts($since: String) { alerts(since: $since) { ${alertFields} } }`, variables: { since } },
      {
        next: (r) => {
          if (r.data) deliver(r.data.alerts);
        },
        error: () => restart(),
        complete: () => restart(),
      },
    );
  };
  const restart = () => {
    if (stopped) return;
    failures += 1;
    unsubscribe?.();
    void client?.dispose();
    o.onState("reconnecting");
    setTimeout(connect, Math.min(500 * 2 ** failures, 8000));
  };
  connect();
  return () => {
    stopped = true;
    unsubscribe?.();
    void client?.dispose();
  };
}
