// Unit test of the page's origin check (node --test origins-test.mjs, or npm test): a link to
// the demo must not be able to point its sign-in form or its bearer token at another host.
import assert from "node:assert/strict";
import test from "node:test";
import { DEFAULT_API, DEFAULT_AUTH, demoOrigins, loopbackOrigin } from "./origins.js";

test("loopback http origins from the query string are used", () => {
  for (const [given, used] of [
    ["http://127.0.0.1:3000", "http://127.0.0.1:3000"],
    ["http://127.0.0.1:3000/", "http://127.0.0.1:3000"],
    ["http://localhost:8080", "http://localhost:8080"],
    ["HTTP://LOCALHOST:8080", "http://localhost:8080"],
    ["http://[::1]:8080", "http://[::1]:8080"],
    ["http://127.0.0.1", "http://127.0.0.1"],
  ]) {
    assert.deepEqual(loopbackOrigin(given, "fallback"), { origin: used, rejected: null }, given);
  }
});

test("anything else falls back to the default, saying why", () => {
  for (const given of [
    "https://attacker.example",
    "http://attacker.example:8080",
    "https://127.0.0.1:3000", // plain http only: what the local stack serves
    "http://127.0.0.1.attacker.example",
    "http://localhost@attacker.example",
    "http://attacker.example#@127.0.0.1",
    "http://localhost.attacker.example",
    "http://user:pass@127.0.0.1:3000",
    "http://127.0.0.1:3000/somewhere",
    "http://127.0.0.1:3000/?x=1",
    "javascript:alert(1)",
    "//attacker.example",
    "not a url",
  ]) {
    const { origin, rejected } = loopbackOrigin(given, "fallback");
    assert.equal(origin, "fallback", given);
    assert.match(rejected, /using fallback$/, given);
  }
});

test("no value, or an empty one, is the default without a complaint", () => {
  assert.deepEqual(loopbackOrigin(null, "fallback"), { origin: "fallback", rejected: null });
  assert.deepEqual(loopbackOrigin("", "fallback"), { origin: "fallback", rejected: null });
});

test("the page's query string: each origin checked on its own", () => {
  assert.deepEqual(demoOrigins(""), { auth: DEFAULT_AUTH, api: DEFAULT_API, rejected: [] });
  assert.deepEqual(demoOrigins("?auth=http://127.0.0.1:3001&api=http://localhost:8081"), {
    auth: "http://127.0.0.1:3001",
    api: "http://localhost:8081",
    rejected: [],
  });
  const leak = demoOrigins(`?auth=http://127.0.0.1:3001&api=${encodeURIComponent("https://attacker.example")}`);
  assert.equal(leak.auth, "http://127.0.0.1:3001");
  assert.equal(leak.api, DEFAULT_API);
  assert.equal(leak.rejected.length, 1);
  assert.match(leak.rejected[0], /^api: "https:\/\/attacker\.example"/);
  const both = demoOrigins("?auth=http://evil.example&api=http://evil.example");
  assert.deepEqual([both.auth, both.api, both.rejected.length], [DEFAULT_AUTH, DEFAULT_API, 2]);
});
