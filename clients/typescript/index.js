// The task API client: openapi-fetch over the types generated from the contract
// (schema.d.ts), plus the one piece every caller gets wrong when written by hand: the bearer
// token. Plain JavaScript with hand-written declarations (index.d.ts), so no build step sits
// between the contract and an app. Knows nothing about Better Auth: a token source is any
// function that returns a JWT (or null when signed out).
import createClient from "openapi-fetch";

/** Thrown when no token can be had: the user is signed out (or their session ended). */
export class SignedOutError extends Error {
  constructor(message = "signed out") {
    super(message);
    this.name = "SignedOutError";
  }
}

/** A JWT's `exp` and `iat` (seconds since the epoch) from its unverified payload; 0 for each
 * that is missing or unreadable. */
function tokenTimes(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), "=")));
    const seconds = (value) => (typeof value === "number" ? value : 0);
    return { exp: seconds(claims.exp), iat: seconds(claims.iat) };
  } catch {
    return { exp: 0, iat: 0 };
  }
}

/** Seconds since the epoch at which a JWT expires, from its unverified payload, or 0. */
export function tokenExpiry(token) {
  return tokenTimes(token).exp;
}

/** When a token that arrives `nowMs` stops being worth sending: its lifetime (`exp - iat`)
 * from its arrival, on this machine's clock, so that a clock running ahead of the issuer's
 * still keeps it and one running behind does not keep it past its end; `exp` itself for a
 * token without `iat`. */
function expiresAtMs(token, nowMs) {
  const { exp, iat } = tokenTimes(token);
  return exp > iat && iat > 0 ? nowMs + (exp - iat) * 1000 : exp * 1000;
}

/**
 * Keeps the JWT that `fetchToken` returns until `refreshBeforeSeconds` before its `exp`, and
 * asks again only then (or when told the token was refused). Concurrent callers share one
 * request. Held in memory only: never in localStorage, where any script on the page could
 * read it. `clear()` forgets it for good: a request already under way when it is called
 * neither fills the cache again nor answers a caller that asks after it (else the token of a
 * user who just signed out could be handed to the next one).
 */
export function tokenSource(fetchToken, { refreshBeforeSeconds = 10, now = () => Date.now() } = {}) {
  let cached = null; // { token, expiresAtMs }
  let pending = null;
  let generation = 0; // moved on by clear()
  const fresh = () => cached && cached.expiresAtMs - refreshBeforeSeconds * 1000 > now();
  return {
    /** The token to send, fetching one when there is none or it is about to expire, or when
     * `forceRefresh`; with `refused` (the token the API refused), only if the cached one is
     * still that token: callers refused together refresh once. */
    async get({ forceRefresh = false, refused } = {}) {
      const replaced = refused !== undefined && cached?.token !== refused;
      if ((!forceRefresh || replaced) && fresh()) return cached.token;
      if (!pending) {
        const started = generation;
        // Started on the next tick, so that `pending` is set before anything below runs.
        const request = Promise.resolve()
          .then(() => fetchToken())
          .then((token) => {
            if (started === generation) cached = token ? { token, expiresAtMs: expiresAtMs(token, now()) } : null;
            return token ?? null;
          })
          .finally(() => {
            if (pending === request) pending = null;
          });
        pending = request;
      }
      return pending;
    },
    /** Forgets the token, and any request for one still under way (on sign-out, or another user). */
    clear() {
      generation++;
      cached = null;
      pending = null;
    },
  };
}

/** What every task call is sent with unless the caller says otherwise: no cookies (the bearer
 * token is the whole credential; the week-long session cookie must not reach the task API,
 * even when it shares the page's origin), and no following redirects (a token must never be
 * carried to wherever a 3xx points; the Rust client refuses them too). */
const TASK_REQUEST_DEFAULTS = Object.freeze({ credentials: "omit", redirect: "error" });

/** The bearer-and-retry wrapper, sending each request as it was built. */
function bearerFetch(tokens, baseFetch) {
  return async (request) => {
    const retry = request.clone();
    const send = async (req, options) => {
      const token = await tokens.get(options);
      if (!token) throw new SignedOutError();
      req.headers.set("authorization", `Bearer ${token}`);
      return [token, await baseFetch(req)];
    };
    const [sent, first] = await send(request, {});
    if (first.status !== 401) return first;
    const [, second] = await send(retry, { forceRefresh: true, refused: sent });
    if (second.status === 401) {
      tokens.clear();
      throw new SignedOutError();
    }
    return second;
  };
}

/**
 * A `fetch` that adds `Authorization: Bearer <token>` and, when the API answers 401, gets a
 * fresh token and tries once more: a token can expire or its key rotate between the check
 * here and the gateway's. A second 401, or no token at all, is a SignedOutError. Every request
 * goes out with `credentials: "omit"` and `redirect: "error"` (whatever the Request it is given
 * says) unless `options` names others.
 */
export function authorizedFetch(tokens, baseFetch = globalThis.fetch, { credentials, redirect } = {}) {
  const send = bearerFetch(tokens, baseFetch);
  const init = {
    credentials: credentials ?? TASK_REQUEST_DEFAULTS.credentials,
    redirect: redirect ?? TASK_REQUEST_DEFAULTS.redirect,
  };
  return (request) => send(new Request(request, init));
}

/** A typed client for the task API at `baseUrl` (the gateway; "" for the page's own origin).
 * Its calls omit cookies and refuse redirects unless `credentials` / `redirect` (here, or in
 * one call's options) say otherwise. */
export function createTasksClient({ baseUrl, tokens, fetch = globalThis.fetch, credentials, redirect }) {
  return createClient({
    baseUrl,
    // openapi-fetch builds each Request from these, then from the call's own options: a call
    // may still choose, and the Request is sent as built.
    fetch: bearerFetch(tokens, fetch),
    credentials: credentials ?? TASK_REQUEST_DEFAULTS.credentials,
    redirect: redirect ?? TASK_REQUEST_DEFAULTS.redirect,
  });
}

/** What a list answer says about the rest: X-Total-Count and the Link header's next/prev. */
export function pageInfo(response) {
  const total = Number.parseInt(response.headers.get("x-total-count") ?? "", 10);
  const links = {};
  for (const part of (response.headers.get("link") ?? "").split(",")) {
    const match = /<([^>]*)>\s*;\s*rel="?([a-z]+)"?/i.exec(part);
    if (match) links[match[2]] = match[1];
  }
  return { total: Number.isNaN(total) ? null : total, next: links.next ?? null, prev: links.prev ?? null };
}

/**
 * A sentence a person can read for a failed call: the fields and messages of a 422, "signed
 * out" for 401, "slow down" for 429, "try again" for 503, else the API's `detail`.
 */
export function errorMessage(status, body) {
  if (status === 401) return "You are signed out. Sign in again.";
  if (status === 429) return "Too many requests in a short time. Wait a moment and try again.";
  if (status === 503) return "The service is busy or briefly unavailable. Try again in a moment.";
  const detail = body && typeof body === "object" ? body.detail : undefined;
  if (status === 422 && Array.isArray(detail)) {
    return detail
      .map((e) => `${(e.loc ?? []).filter((p) => p !== "body" && p !== "query").join(".") || "request"}: ${e.msg}`)
      .join("; ");
  }
  if (typeof detail === "string") return detail;
  return `Request failed (${status}).`;
}
