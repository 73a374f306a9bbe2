// node --test payload.test.mjs (npm test): the session payload keeps the user's own claims,
// names the session, and takes no registered claim from the user row.
import { test } from "node:test";
import assert from "node:assert/strict";
import { sessionPayload, REGISTERED_CLAIMS } from "./payload.mjs";

const user = {
  id: "u1",
  name: "Mallory",
  email: "m@example.test",
  emailVerified: false,
  role: "user",
  // An app's own columns that happen to carry registered claim names, and one named `sid`.
  iat: 4102444800,
  exp: 4102444800,
  nbf: 0,
  iss: "https://evil.example",
  aud: "https://other-api.example",
  jti: "chosen",
  sub: "someone-else",
  sid: "another-session",
};

test("no registered claim comes from the user row", () => {
  const payload = sessionPayload({ user, session: { id: "s1" } });
  for (const claim of REGISTERED_CLAIMS) assert.equal(claim in payload, false, `${claim}: ${JSON.stringify(payload)}`);
});

test("the session is named and the user's own claims stay", () => {
  const payload = sessionPayload({ user, session: { id: "s1" } });
  assert.deepEqual(payload, {
    id: "u1",
    name: "Mallory",
    email: "m@example.test",
    emailVerified: false,
    role: "user",
    sid: "s1",
  });
});

test("the registered names are RFC 7519's", () => {
  assert.deepEqual([...REGISTERED_CLAIMS].sort(), ["aud", "exp", "iat", "iss", "jti", "nbf", "sub"]);
});

// The guides users copy from must not teach the whole row either: a `definePayload` that
// spreads `user` unfiltered is the fault sessionPayload exists to avoid.
test("no guide spreads the whole user row into the JWT payload", async () => {
  const { readFile } = await import("node:fs/promises");
  const root = new URL("../../", import.meta.url);
  const guides = ["README.md", "examples/nextjs/README.md", "deploy/better-auth/README.md", "clients/typescript/README.md"];
  const spread = /definePayload\s*:\s*\(\s*\{[^}]*\}\s*\)\s*=>\s*\(\s*\{\s*\.\.\.\s*user\s*[,}]/;
  for (const guide of guides) {
    const text = await readFile(new URL(guide, root), "utf8");
    assert.equal(spread.test(text), false, `${guide} spreads the user row into definePayload`);
  }
});
