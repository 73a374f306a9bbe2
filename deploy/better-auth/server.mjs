// Small Better Auth issuer server: email/password sign-up/sign-in + the JWT
// plugin (JWKS at /api/auth/jwks, tokens at /api/auth/token and in the
// `set-auth-jwt` header of /api/auth/get-session), the admin plugin (ban, revoke), data in
// PostgreSQL, and the revocation triggers of revocation.sql that tell gateways a session ended.
//
// Plain ESM JavaScript, no build step. See README.md for the environment.
import http from "node:http";
import { readFileSync } from "node:fs";
import pg from "pg";
import { betterAuth } from "better-auth";
import { jwt, createJwk } from "better-auth/plugins/jwt";
import { admin } from "better-auth/plugins/admin";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";
import { symmetricDecrypt } from "better-auth/crypto";
import { sessionPayload } from "./payload.mjs";

const { Pool, Client } = pg;

// ---------------------------------------------------------------- config --

// Every variable this server reads, with its default (null: required; "": none). `env()`
// refuses any other name, so `node server.mjs --list-env` (NAME<TAB>required|optional<TAB>
// default, the format the Rust binaries print too) cannot drift from the code; deploy/check
// holds the compose and Kubernetes files to it.
const ENV = {
  PORT: "3000",
  HOST: "127.0.0.1",
  BETTER_AUTH_URL: "", // derived: http://127.0.0.1:$PORT
  BETTER_AUTH_SECRET: null,
  DATABASE_URL: "postgres://postgres@127.0.0.1:5432/better_auth",
  DB_WAIT_SECONDS: "30",
  JWT_ALG: "EdDSA",
  JWT_EXPIRATION: "15m",
  JWKS_ROTATION_INTERVAL: "",
  JWKS_GRACE_PERIOD: "",
  RATE_LIMIT: "",
  CORS: "on",
  TRUSTED_ORIGINS: "",
  NODE_ENV: "",
};

if (process.argv.includes("--list-env")) {
  for (const [name, fallback] of Object.entries(ENV)) {
    console.log(`${name}\t${fallback === null ? "required" : "optional"}\t${fallback ?? ""}`);
  }
  process.exit(0);
}

/** The variable's value, or its declared default when unset or empty. */
function env(name) {
  if (!(name in ENV)) throw new Error(`${name} is not declared in ENV`);
  const raw = process.env[name];
  return raw === undefined || raw === "" ? (ENV[name] ?? "") : raw;
}

function fail(message) {
  console.error(`better-auth-issuer: ${message}`);
  process.exit(1);
}

function intEnv(name, fallback) {
  const raw = env(name);
  if (raw === "") return fallback;
  if (!/^\d+$/.test(raw.trim())) fail(`${name} must be a non-negative integer, got "${raw}"`);
  return Number.parseInt(raw.trim(), 10);
}

const PORT = intEnv("PORT", 3000);
const HOST = env("HOST");
const BASE_URL = (env("BETTER_AUTH_URL") || `http://127.0.0.1:${PORT}`).replace(/\/+$/, "");
const DATABASE_URL = env("DATABASE_URL");

const SECRET = env("BETTER_AUTH_SECRET");
if (!SECRET) fail("BETTER_AUTH_SECRET is not set; set it to a random string of at least 32 characters (e.g. `openssl rand -base64 32`).");
if (SECRET.length < 32) fail(`BETTER_AUTH_SECRET is too short (${SECRET.length} characters); it must be at least 32 characters.`);
// The secret an earlier deploy/.env.example shipped: an env file copied from an old checkout
// must not carry it into a deployment (anyone could decrypt the signing keys with it).
if (SECRET === "INSECURE-EXAMPLE-SECRET-for-ci-only-do-not-use")
  fail("BETTER_AUTH_SECRET is the one an earlier deploy/.env.example published; make a new one (deploy/new-env.sh, or openssl rand -base64 32).");

// JWT_ALG -> jwks.keyPairConfig (the JWKOptions union of the jwt plugin).
const KEY_PAIR_CONFIGS = {
  EdDSA: { alg: "EdDSA", crv: "Ed25519" },
  ES256: { alg: "ES256" },
  ES512: { alg: "ES512" },
  RS256: { alg: "RS256", modulusLength: 2048 },
  PS256: { alg: "PS256", modulusLength: 2048 },
};
const JWT_ALG = env("JWT_ALG");
const keyPairConfig = KEY_PAIR_CONFIGS[JWT_ALG];
if (!keyPairConfig) fail(`JWT_ALG "${JWT_ALG}" is not supported; use one of ${Object.keys(KEY_PAIR_CONFIGS).join(", ")}.`);

// JWT_EXPIRATION: a Better Auth time span ("15m", "5s", "1h", "2 days") or a
// bare number of seconds. (A bare *number* would be taken by the plugin as an
// absolute `exp`, so it is turned into "<n>s" here.)
let JWT_EXPIRATION = env("JWT_EXPIRATION").trim();
if (/^\d+$/.test(JWT_EXPIRATION)) JWT_EXPIRATION = `${JWT_EXPIRATION}s`;
if (!/^\d+(\.\d+)? ?(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)$/i.test(JWT_EXPIRATION)) {
  fail(`JWT_EXPIRATION "${env("JWT_EXPIRATION")}" is not a time span like 15m, 5s, 1h or 300.`);
}

// Key rotation (the jwt plugin's own jwks.rotationInterval / jwks.gracePeriod,
// both in seconds). Only enabled when JWKS_ROTATION_INTERVAL is set.
const ROTATION_INTERVAL = intEnv("JWKS_ROTATION_INTERVAL", undefined);
const GRACE_PERIOD = intEnv("JWKS_GRACE_PERIOD", undefined);
if (ROTATION_INTERVAL === 0) fail("JWKS_ROTATION_INTERVAL must be > 0 seconds (unset it to disable rotation).");

// RATE_LIMIT: "on" / "off"; unset keeps Better Auth's default (on only when
// NODE_ENV=production: 100 requests per 10 s per IP and path, 3 per 10 s on
// /sign-in/*, /sign-up/*, in memory).
const RATE_LIMIT = env("RATE_LIMIT").trim().toLowerCase();
if (RATE_LIMIT && !["on", "off"].includes(RATE_LIMIT)) fail(`RATE_LIMIT must be "on" or "off", got "${env("RATE_LIMIT")}"`);

// CORS: "on" (default) adds CORS headers for TRUSTED_ORIGINS; "off" leaves
// CORS to a proxy in front (two layers would send duplicate
// Access-Control-Allow-Origin headers, which browsers reject).
const CORS = env("CORS").trim().toLowerCase();
if (!["on", "off"].includes(CORS)) fail(`CORS must be "on" or "off", got "${env("CORS")}"`);

const TRUSTED_ORIGINS = env("TRUSTED_ORIGINS")
  .split(",")
  .map((s) => s.trim().replace(/\/+$/, ""))
  .filter(Boolean);

let dbName;
let adminUrl;
try {
  const u = new URL(DATABASE_URL);
  dbName = decodeURIComponent(u.pathname.replace(/^\//, "")) || "postgres";
  u.pathname = "/postgres";
  adminUrl = u.toString();
} catch {
  // Masked to the last `@`: a password with an unencoded `/` (common in base64) is exactly
  // what makes the URL invalid, and would end a mask that stops at the first `/`.
  fail(`DATABASE_URL is not a valid URL: ${DATABASE_URL.replace(/^([^/@]*\/\/)?.*@/s, "$1***@")}`);
}

// --------------------------------------------------------------- database --

async function ensureDatabase() {
  if (dbName === "postgres") return;
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [dbName]);
    if (rowCount > 0) return;
    const ident = '"' + dbName.replace(/"/g, '""') + '"';
    try {
      await client.query(`CREATE DATABASE ${ident}`);
      console.log(`better-auth-issuer: created database ${dbName}`);
    } catch (err) {
      // 42P04 duplicate_database; 23505 unique_violation on pg_database when
      // another instance created it between our check and our CREATE.
      if (err.code !== "42P04" && err.code !== "23505") throw err;
    }
  } finally {
    await client.end();
  }
}

const pool = new Pool({ connectionString: DATABASE_URL, max: 10 });
pool.on("error", (err) => console.error("better-auth-issuer: idle pg client error:", err.message));

// ------------------------------------------------------------ better auth --

const jwtOptions = {
  jwks: {
    keyPairConfig,
    ...(ROTATION_INTERVAL !== undefined ? { rotationInterval: ROTATION_INTERVAL } : {}),
    ...(GRACE_PERIOD !== undefined ? { gracePeriod: GRACE_PERIOD } : {}),
  },
  jwt: {
    // issuer / audience deliberately left unset: the plugin defaults both to
    // the baseURL (BETTER_AUTH_URL).
    expirationTime: JWT_EXPIRATION,
    // The plugin's default payload (the user row) plus the session id, so a gateway can
    // refuse the tokens of a session that has ended (revocation.sql, issue 13), less any
    // column named like a registered claim (iat, exp, ...), which signJWT would obey.
    definePayload: sessionPayload,
  },
};

export const auth = betterAuth({
  baseURL: BASE_URL,
  secret: SECRET,
  database: pool,
  trustedOrigins: TRUSTED_ORIGINS,
  emailAndPassword: {
    enabled: true,
    requireEmailVerification: false,
    autoSignIn: true,
  },
  telemetry: { enabled: false },
  ...(RATE_LIMIT ? { rateLimit: { enabled: RATE_LIMIT === "on" } } : {}),
  // admin: ban users and revoke their sessions (/api/auth/admin/*, only for users whose
  // `role` is "admin"; nobody is one until an operator sets it in the user table).
  plugins: [jwt(jwtOptions), admin()],
});

// Advisory-lock key shared by every instance migrating the same database.
const MIGRATION_LOCK_KEY = 0x62617574; // "baut"

async function migrate() {
  const lockClient = await pool.connect();
  try {
    await lockClient.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      const { toBeCreated, toBeAdded, runMigrations } = await getMigrations(auth.options);
      if (toBeCreated.length || toBeAdded.length) {
        console.log(
          `better-auth-issuer: migrating (create: ${toBeCreated.map((t) => t.table).join(", ") || "-"}; ` +
            `add columns to: ${toBeAdded.map((t) => t.table).join(", ") || "-"})`,
        );
        await runMigrations();
      }
      await applyRevocationTriggers(lockClient);
      await ensureSigningKey();
    } finally {
      await lockClient.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
    }
  } finally {
    lockClient.release();
  }
}

// The triggers that record every ended session, banned or deleted user in auth_revocation
// and NOTIFY the gateways (see revocation.sql). After Better Auth's migrations, because
// they attach to its tables and the ban trigger to the admin plugin's `banned` column. The
// file is one transaction, so a running instance never sees the triggers missing while
// another one restarts.
const REVOCATION_SQL = readFileSync(new URL("./revocation.sql", import.meta.url), "utf8");

async function applyRevocationTriggers(client) {
  try {
    await client.query(REVOCATION_SQL);
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw new StartupError(`applying revocation.sql failed: ${err.message}`);
  }
  const { rows } = await client.query(
    "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'auth_revocation_%' AND NOT tgisinternal ORDER BY tgname",
  );
  console.log(`better-auth-issuer: revocation triggers: ${rows.map((r) => r.tgname).join(", ")}`);
}

// The jwt plugin signs with the newest live key whose alg equals
// keyPairConfig.alg, but *falls back to the newest live key of any alg* when
// there is none (and /jwks only mints a key when the table is empty). So a
// database first used with another JWT_ALG would keep issuing tokens in the old
// algorithm. To make JWT_ALG authoritative (and to avoid two instances minting
// the first key concurrently on their first requests), mint a key for the
// configured algorithm here, under the migration lock, with the plugin's own
// createJwk (same encryption and expiresAt/rotation handling).
async function ensureSigningKey() {
  const { rows } = await pool.query('SELECT id, alg, "privateKey", "createdAt", "expiresAt" FROM jwks');
  const now = Date.now();
  const live = rows.filter((r) => !r.expiresAt || new Date(r.expiresAt).getTime() > now);
  const liveForAlg = live
    .filter((r) => (r.alg ?? "EdDSA") === JWT_ALG)
    .sort((a, b) => new Date(b.createdAt) - new Date(a.createdAt));
  const otherAlgs = [...new Set(live.map((r) => r.alg ?? "EdDSA").filter((a) => a !== JWT_ALG))];
  if (otherAlgs.length) {
    console.warn(
      `better-auth-issuer: WARNING: database ${dbName} also holds live ${otherAlgs.join(", ")} keys; ` +
        `they stay published in the JWKS. Use a separate database per JWT_ALG to avoid this.`,
    );
  }
  const ctx = await auth.$context;
  if (liveForAlg.length === 0) {
    const key = await createJwk({ context: ctx }, jwtOptions);
    console.log(`better-auth-issuer: minted ${JWT_ALG} signing key ${key.id}`);
    return;
  }
  // The plugin encrypts private keys with the secret; with another secret every
  // token request would fail with a 500, so refuse to start instead.
  try {
    await symmetricDecrypt({ key: ctx.secretConfig, data: JSON.parse(liveForAlg[0].privateKey) });
  } catch {
    throw new StartupError(
      `the signing key ${liveForAlg[0].id} in database ${dbName} was encrypted with a different ` +
        `BETTER_AUTH_SECRET; start with the original secret or use a fresh database (DATABASE_URL).`,
    );
  }
}

class StartupError extends Error {}

// ------------------------------------------------------------------- http --

let ready = false;
const authHandler = toNodeHandler(auth);

function sendJson(res, status, body, extraHeaders = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(data),
    "cache-control": "no-store",
    ...extraHeaders,
  });
  res.end(data);
}

// Minimal CORS for TRUSTED_ORIGINS only: Better Auth checks Origin on
// state-changing requests but sets no CORS headers and does not answer
// preflights, so a page on another origin could not read its responses.
function applyCors(req, res) {
  const origin = req.headers.origin;
  res.setHeader("Vary", "Origin");
  if (!origin || !TRUSTED_ORIGINS.includes(origin)) return false;
  res.setHeader("Access-Control-Allow-Origin", origin);
  res.setHeader("Access-Control-Allow-Credentials", "true");
  res.setHeader("Access-Control-Expose-Headers", "set-auth-jwt");
  return true;
}

function handlePreflight(req, res, allowed) {
  res.setHeader("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
  if (allowed) {
    res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.setHeader(
      "Access-Control-Allow-Headers",
      req.headers["access-control-request-headers"] || "content-type, authorization",
    );
    res.setHeader("Access-Control-Max-Age", "600");
  }
  res.writeHead(204, { "content-length": "0" });
  res.end();
}

const server = http.createServer(async (req, res) => {
  const path = (req.url || "/").split("?")[0];
  try {
    if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      if (!ready) return sendJson(res, 503, { status: "starting" });
      try {
        await pool.query("SELECT 1");
      } catch (err) {
        return sendJson(res, 503, { status: "db_unavailable", detail: err.message });
      }
      return sendJson(res, 200, { status: "ok" });
    }
    if (path.startsWith("/api/auth")) {
      const allowed = CORS === "on" && applyCors(req, res);
      if (CORS === "on" && req.method === "OPTIONS" && req.headers["access-control-request-method"]) {
        return handlePreflight(req, res, allowed);
      }
      if (!ready) return sendJson(res, 503, { status: "starting" });
      // Better Auth marks only some endpoints no-store (get-session does; /token, which
      // answers with the caller's JWT, does not), so a shared cache in front could hand one
      // user's token to the next caller. Every response says no-store unless Better Auth
      // sets its own Cache-Control, which replaces this one (toNodeHandler's setHeader).
      // Not the JWKS: public, the same for everyone, and gateways read its max-age.
      if (path !== "/api/auth/jwks") res.setHeader("Cache-Control", "no-store");
      return await authHandler(req, res);
    }
    return sendJson(res, 404, { status: "not_found" });
  } catch (err) {
    console.error(`better-auth-issuer: ${req.method} ${path} failed:`, err);
    if (!res.headersSent) sendJson(res, 500, { status: "error" });
    else res.destroy();
  }
});

// PostgreSQL may still be starting (compose, CI): retry connection failures
// for up to DB_WAIT_SECONDS (default 30) before giving up.
const DB_WAIT_SECONDS = intEnv("DB_WAIT_SECONDS", 30);
const TRANSIENT = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "57P03"]);

async function waitForDatabase() {
  const deadline = Date.now() + DB_WAIT_SECONDS * 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await ensureDatabase();
    } catch (err) {
      if (!TRANSIENT.has(err.code) || Date.now() >= deadline) throw err;
      if (attempt === 1) console.log(`better-auth-issuer: waiting for PostgreSQL (${err.code})`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function main() {
  await waitForDatabase();
  await migrate();
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(PORT, HOST, resolve);
  });
  ready = true;
  const rotation =
    ROTATION_INTERVAL !== undefined
      ? ` rotation=${ROTATION_INTERVAL}s grace=${GRACE_PERIOD ?? 2592000}s`
      : "";
  console.log(
    `better-auth-issuer: listening on http://${HOST}:${PORT} baseURL=${BASE_URL} alg=${JWT_ALG} ` +
      `jwt_exp=${JWT_EXPIRATION}${rotation} db=${dbName} trusted_origins=${TRUSTED_ORIGINS.join(",") || "-"} ` +
      `cors=${CORS} rate_limit=${RATE_LIMIT || (env("NODE_ENV") === "production" ? "default(on)" : "default(off)")}`,
  );
}

function shutdown(signal) {
  console.log(`better-auth-issuer: ${signal}, shutting down`);
  server.close();
  pool.end().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on("SIGINT", () => shutdown("SIGINT"));
process.on("SIGTERM", () => shutdown("SIGTERM"));

main().catch((err) => {
  console.error("better-auth-issuer: failed to start:", err instanceof StartupError ? err.message : err);
  process.exit(1);
});
