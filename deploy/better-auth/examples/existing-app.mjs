// An existing Better Auth app, as its authors would have written it before issue 13: Better
// Auth with email/password and the JWT plugin on PostgreSQL, and nothing of this project's
// server (no admin plugin, no revocation.sql applied at start). The e2e suite turns
// revocation on for it the way README.md's "Revocation for an existing Better Auth app" says:
// the definePayload below, and revocation.sql applied with psql.
//
// Reads PORT, BETTER_AUTH_URL, BETTER_AUTH_SECRET and DATABASE_URL (the database must
// exist); runs Better Auth's migrations at start, as `npx @better-auth/cli migrate` would.
import http from "node:http";
import pg from "pg";
import { betterAuth } from "better-auth";
import { jwt } from "better-auth/plugins/jwt";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";

// Claims Better Auth sets itself; a user column of the same name would override them.
const REGISTERED = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

const auth = betterAuth({
  baseURL: process.env.BETTER_AUTH_URL,
  secret: process.env.BETTER_AUTH_SECRET,
  database: new pg.Pool({ connectionString: process.env.DATABASE_URL }),
  emailAndPassword: { enabled: true },
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  plugins: [
    jwt({
      jwt: {
        definePayload: ({ user, session }) => ({
          ...Object.fromEntries(Object.entries(user).filter(([name]) => !REGISTERED.includes(name))),
          sid: session.id,
        }),
      },
    }),
  ],
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const handler = toNodeHandler(auth);
http
  .createServer((req, res) => {
    if (req.url === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end('{"status":"ok"}');
    }
    // The README's advice: /api/auth/token answers with the caller's JWT, never to be cached.
    res.setHeader("Cache-Control", "no-store");
    return handler(req, res);
  })
  .listen(Number(process.env.PORT), "127.0.0.1", () => {
    console.log(`existing-app: listening on ${process.env.BETTER_AUTH_URL}`);
  });
