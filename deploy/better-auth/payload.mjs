// The JWT payload of a Better Auth session: the user row plus `sid`, the session id, so that a
// gateway can refuse the tokens of a session that has ended (revocation.sql).
//
// Better Auth's signJWT takes `iat`, `exp`, `nbf`, `iss`, `aud` and `jti` from the payload
// when present, so a user-table column with one of those names (an app's own field, perhaps
// one its users can set) would set them: a future `iat` escapes a gateway's ban check
// (`iat <= at + leeway`), an `exp` a year out outlives every revocation, an `aud` or `iss`
// points the token elsewhere. Those names are therefore never copied from the row; Better Auth
// sets them (and `sub`, from getSubject, after this function) itself.
//
// Plain ESM with no imports, so a unit test (payload.test.mjs) and an existing app can load it
// without starting a server.

/** RFC 7519's registered claim names: set by Better Auth, never taken from the user row. */
export const REGISTERED_CLAIMS = Object.freeze(["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]);

/** For the JWT plugin's `jwt.definePayload`: the user row without registered claims, plus `sid`. */
export function sessionPayload({ user, session }) {
  const payload = {};
  for (const [name, value] of Object.entries(user)) {
    if (!REGISTERED_CLAIMS.includes(name)) payload[name] = value;
  }
  payload.sid = session.id;
  return payload;
}
