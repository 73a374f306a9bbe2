// Smoke test for the Better Auth issuer (server.mjs).
//
//   AUTH_URL=http://127.0.0.1:3000 node smoke.mjs
//
// Signs a random user up, signs in, gets a JWT from GET /api/auth/token and
// from the `set-auth-jwt` header of GET /api/auth/get-session, fetches
// /api/auth/jwks and verifies both tokens with jose against that JWKS. Both token responses
// must say `Cache-Control: no-store`.
//
// Optional env:
//   EXPECT_ALG            fail unless the tokens use this JWS alg
//   ORIGIN                Origin header sent on POSTs (default: AUTH_URL)
//   SMOKE_ROTATION_WAIT   seconds; after the first checks, wait this long, get a
//                         new token and require a new kid, with the JWKS listing
//                         both the old and the new key (server must be started
//                         with JWKS_ROTATION_INTERVAL < this wait and a grace
//                         period covering it)
import { createLocalJWKSet, jwtVerify, decodeProtectedHeader } from "jose";

const AUTH_URL = (process.env.AUTH_URL || "http://127.0.0.1:3000").replace(/\/+$/, "");
const ORIGIN = process.env.ORIGIN || new URL(AUTH_URL).origin;
const EXPECT_ALG = process.env.EXPECT_ALG || "";
const ROTATION_WAIT = Number(process.env.SMOKE_ROTATION_WAIT || 0);

function die(msg) {
  console.error(`SMOKE FAIL: ${msg}`);
  process.exit(1);
}
function check(cond, msg) {
  if (!cond) die(msg);
}

const jar = new Map();
function storeCookies(res) {
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(";");
    const i = pair.indexOf("=");
    const name = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    if (/max-age=0/i.test(c) || value === "") jar.delete(name);
    else jar.set(name, value);
  }
}
function cookieHeader() {
  return [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
}

async function call(method, path, body) {
  const headers = { accept: "application/json" };
  if (jar.size) headers.cookie = cookieHeader();
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    headers.origin = ORIGIN;
  }
  const res = await fetch(`${AUTH_URL}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  storeCookies(res);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { res, json, text };
}

async function getJwks() {
  const r = await call("GET", "/api/auth/jwks");
  check(r.res.status === 200, `GET /api/auth/jwks -> ${r.res.status} ${r.text}`);
  check(Array.isArray(r.json?.keys) && r.json.keys.length > 0, `JWKS has no keys: ${r.text}`);
  return r;
}

async function verify(token, jwks, label) {
  const header = decodeProtectedHeader(token);
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), {
    issuer: AUTH_URL,
    audience: AUTH_URL,
  }).catch((e) => die(`${label}: verification failed: ${e.code || ""} ${e.message}`));
  return { header, payload };
}

async function getTokens() {
  const t = await call("GET", "/api/auth/token");
  check(t.res.status === 200 && typeof t.json?.token === "string", `GET /api/auth/token -> ${t.res.status} ${t.text}`);
  const s = await call("GET", "/api/auth/get-session");
  check(s.res.status === 200 && s.json?.user?.id, `GET /api/auth/get-session -> ${s.res.status} ${s.text}`);
  const headerJwt = s.res.headers.get("set-auth-jwt");
  check(headerJwt, "get-session response has no set-auth-jwt header");
  // A user's token must never be kept by a shared cache and handed to the next caller.
  for (const [label, r] of [["/token", t], ["get-session", s]]) {
    const cacheControl = r.res.headers.get("cache-control") ?? "";
    check(/(^|,)\s*no-store\s*(,|$)/i.test(cacheControl), `${label}: Cache-Control "${cacheControl}", not no-store`);
  }
  return { tokenJwt: t.json.token, headerJwt, session: s.json };
}

const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
const email = `smoke-${id}@example.test`;
const password = `pw-${id}-Secret!`;

const up = await call("POST", "/api/auth/sign-up/email", { email, password, name: `Smoke ${id}` });
check(up.res.status === 200, `sign-up -> ${up.res.status} ${up.text}`);
const userId = up.json?.user?.id;
check(userId, `sign-up returned no user id: ${up.text}`);

jar.clear(); // sign in from scratch
const inn = await call("POST", "/api/auth/sign-in/email", { email, password });
check(inn.res.status === 200, `sign-in -> ${inn.res.status} ${inn.text}`);
check(inn.json?.user?.id === userId, "sign-in user id differs from sign-up user id");
check(jar.size > 0, "sign-in set no cookies");
const sessionCookie = inn.res.headers.getSetCookie().find((c) => /session_token=/.test(c)) || "";

const { tokenJwt, headerJwt, session } = await getTokens();
check(session.user.id === userId, "get-session user id differs");
const jw = await getJwks();

const a = await verify(tokenJwt, jw.json, "/token JWT");
const b = await verify(headerJwt, jw.json, "set-auth-jwt JWT");
for (const [label, v] of [["/token", a], ["set-auth-jwt", b]]) {
  check(v.payload.sub === userId, `${label}: sub ${v.payload.sub} != user id ${userId}`);
  if (EXPECT_ALG) check(v.header.alg === EXPECT_ALG, `${label}: alg ${v.header.alg} != ${EXPECT_ALG}`);
  check(jw.json.keys.some((k) => k.kid === v.header.kid), `${label}: kid ${v.header.kid} not in JWKS`);
}

const p = a.payload;
console.log(`user        ${userId} <${email}>`);
console.log(`session cookie  ${sessionCookie.replace(/=[^;]*/, "=…")}`);
console.log(`alg ${a.header.alg}  kid ${a.header.kid}  typ ${a.header.typ ?? "(absent)"}  header keys ${Object.keys(a.header).join(",")}`);
console.log(`iss ${p.iss}  aud ${JSON.stringify(p.aud)}  sub ${p.sub}  iat ${p.iat}  exp ${p.exp} (${p.exp - p.iat}s)`);
console.log(`claims      ${Object.keys(p).join(",")}`);
console.log(`set-auth-jwt alg ${b.header.alg} kid ${b.header.kid} sub ${b.payload.sub} exp ${b.payload.exp}`);
console.log(`jwks        ${jw.json.keys.map((k) => `${k.kid}(${k.alg}/${k.kty}${k.crv ? "/" + k.crv : ""})`).join(" ")}`);
console.log(`jwks headers  cache-control=${jw.res.headers.get("cache-control") ?? "(absent)"} content-type=${jw.res.headers.get("content-type")}`);

if (ROTATION_WAIT > 0) {
  const oldKid = a.header.kid;
  const t0 = Date.now();
  console.log(`rotation: waiting ${ROTATION_WAIT}s (old kid ${oldKid})`);
  await new Promise((r) => setTimeout(r, ROTATION_WAIT * 1000));
  const next = await getTokens();
  const jw2 = await getJwks();
  const n = await verify(next.tokenJwt, jw2.json, "post-rotation JWT");
  const kids = jw2.json.keys.map((k) => k.kid);
  console.log(`rotation: after ${((Date.now() - t0) / 1000).toFixed(1)}s new kid ${n.header.kid}; jwks kids ${kids.join(" ")}`);
  check(n.header.kid !== oldKid, `rotation: kid did not change (${oldKid})`);
  check(kids.includes(oldKid) && kids.includes(n.header.kid), "rotation: JWKS does not list both old and new kid");
  // The pre-rotation token must still verify against the new JWKS (grace period).
  const nowSec = Math.floor(Date.now() / 1000);
  if (p.exp > nowSec) {
    await verify(tokenJwt, jw2.json, "pre-rotation JWT against post-rotation JWKS");
    console.log("rotation: pre-rotation token still verifies against the new JWKS");
  } else {
    console.log("rotation: pre-rotation token already expired; skipped re-verifying it");
  }
}

console.log("SMOKE OK");
