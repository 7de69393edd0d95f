// GraphQL over HTTP with retries: a lost connection or a server that cannot answer right now is retried
// with backoff while a banner says so; a mistake in what was asked is thrown with Engage's own words.

import { headers, type Session } from "./session";

/** ApiError is a GraphQL error with Engage's code (BAD_USER_INPUT, NOT_FOUND, …). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

class Transient extends Error {}

export interface RetryStatus {
  /** Empty when the last request went through. */
  message: string;
  /** Try now instead of waiting for the next attempt. */
  retryNow?: () => void;
}

export interface Api {
  query<T>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** upload sends one file as the variable named by fileVar, as a GraphQL multipart request. */
  upload<T>(query: string, variables: Record<string, unknown>, fileVar: string, file: File): Promise<T>;
}

/**
 * newApi answers queries for a session; onStatus hears when Engage cannot be reached and when it can
 * again. Requests are retried until they go through, so nothing the user asked for is dropped.
 */
export function newApi(session: Session, onStatus: (s: RetryStatus) => void): Api {
  async function once<T>(body: () => { type?: string; data: BodyInit }): Promise<T> {
    let res: Response;
    try {
      const b = body();
      res = await fetch("/graphql", {
        method: "POST",
        headers: { ...(b.type ? { "Content-Type": b.type } : {}), ...(await headers(session)) },
        body: b.data,
      });
    } catch {
      throw new Transient("Engage cannot be reached");
    }
    if (res.status >= 500 || res.status === 429) {
      throw new Transient(`Engage answered ${res.status}`);
    }
    let out: { data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }> };
    const text = await res.text().catch(() => "");
    try {
      out = JSON.parse(text);
    } catch {
      if (res.status === 413) throw new ApiError("That is larger than Engage accepts", "PAYLOAD_TOO_LARGE");
      if (res.status >= 400) throw new ApiError(`Engage refused the request (${res.status}): ${text.trim().slice(0, 200)}`, "");
      throw new Transient(`Engage answered ${res.status} without GraphQL`);
    }
    const err = out.errors?.[0];
    if (err) {
      const code = err.extensions?.code ?? "";
      if (code === "UNAVAILABLE") throw new Transient(err.message);
      throw new ApiError(err.message, code);
    }
    if (out.data === undefined) throw new Transient("Engage answered without data");
    return out.data;
  }

  async function retried<T>(body: () => { type?: string; data: BodyInit }): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await once<T>(body);
        onStatus({ message: "" });
        return out;
      } catch (e) {
        if (!(e instanceof Transient)) throw e;
        const wait = Math.min(500 * 2 ** attempt, 8000);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          onStatus({
            message: `${e.message}. Trying again in ${Math.ceil(wait / 1000)} s; nothing you typed is lost.`,
            retryNow: () => {
              clearTimeout(timer);
              resolve();
            },
          });
        });
      }
    }
  }

  return {
    query: <T>(query: string, variables?: Record<string, unknown>) =>
      retried<T>(() => ({ type: "application/json", data: JSON.stringify({ query, variables }) })),
    upload: <T>(query: string, variables: Record<string, unknown>, fileVar: string, file: File) =>
      retried<T>(() => {
        // graphql-multipart-request-spec: operations, then a map from form field to variable, then the file.
        const form = new FormData();
        form.append("operations", JSON.stringify({ query, variables: { ...variables, [fileVar]: null } }));
        form.append("map", JSON.stringify({ "0": [`variables.${fileVar}`] }));
        form.append("0", file, file.name);
        return { data: form };
      }),
  };
}
