// Which auth server and gateway the page talks to. The query string may name them, but only
// on this machine: the page sends the sign-in form's email and password to the auth server
// and `Authorization: Bearer <jwt>` to the gateway, so a link with `?api=https://elsewhere`
// must not be able to send them elsewhere. Pure (no DOM), so node can test it
// (origins-test.mjs).

export const DEFAULT_AUTH = "http://127.0.0.1:3000";
export const DEFAULT_API = "http://127.0.0.1:8080";

// WHATWG URL hostnames: lower-cased, IPv4 normalised (127.1 -> 127.0.0.1), IPv6 compressed
// and bracketed ([0:0:0:0:0:0:0:1] -> [::1]).
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * The origin `value` names if it is plain `http://` on a loopback host (127.0.0.1, localhost,
 * [::1]), any port, with nothing but an optional trailing `/` after it; else `fallback`, with
 * `rejected` saying why. No value (or an empty one) is `fallback` without complaint.
 * @returns {{ origin: string, rejected: string | null }}
 */
export function loopbackOrigin(value, fallback) {
  if (value == null || value.trim() === "") return { origin: fallback, rejected: null };
  const refuse = (why) => ({ origin: fallback, rejected: `${JSON.stringify(value)} ${why}; using ${fallback}` });
  let url;
  try {
    url = new URL(value.trim());
  } catch {
    return refuse("is not a URL");
  }
  if (url.protocol !== "http:") return refuse("is not http://");
  if (!LOOPBACK_HOSTS.has(url.hostname)) return refuse("is not on this machine (127.0.0.1, localhost or [::1])");
  if (url.username || url.password) return refuse("carries a user name or password");
  if (url.pathname !== "/" || url.search || url.hash) return refuse("is more than an origin");
  return { origin: url.origin, rejected: null };
}

/** The auth server and gateway origins from a query string (`?auth=…&api=…`), and the reasons
 * for any value refused. */
export function demoOrigins(search) {
  const params = new URLSearchParams(search);
  const auth = loopbackOrigin(params.get("auth"), DEFAULT_AUTH);
  const api = loopbackOrigin(params.get("api"), DEFAULT_API);
  const rejected = [];
  if (auth.rejected) rejected.push(`auth: ${auth.rejected}`);
  if (api.rejected) rejected.push(`api: ${api.rejected}`);
  return { auth: auth.origin, api: api.origin, rejected };
}
