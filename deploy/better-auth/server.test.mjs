// node --test server.test.mjs (npm test): what the issuer server says when it refuses to start.
// It prints no secret of its settings, even a database URL that is invalid because of its
// password.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

function start(env) {
  return spawnSync(process.execPath, [fileURLToPath(new URL("server.mjs", import.meta.url))], {
    env: { PATH: process.env.PATH, BETTER_AUTH_SECRET: "s".repeat(40), ...env },
    encoding: "utf8",
    timeout: 30_000,
  });
}

test("an invalid DATABASE_URL is refused without its password", () => {
  // `new URL` ends the authority at the password's `/` and fails on the port "ab": a password
  // holding `/` (common in base64) is exactly what makes the URL invalid.
  for (const password of ["ab/cd", "x/y@z"]) {
    const run = start({ DATABASE_URL: `postgres://ba:${password}@db.internal:5432/better_auth` });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /DATABASE_URL is not a valid URL: postgres:\/\/\*\*\*@db\.internal:5432\/better_auth/);
    assert.equal(run.stderr.includes(password), false, run.stderr);
  }
});
