// Unit tests of the hand-written part (node --test): the token cache, the one retry after a
// 401, what each request is sent with (no cookies, no redirects), and reading X-Total-Count /
// Link. The generated types are checked by check.mjs.
import assert from "node:assert/strict";
import test from "node:test";
import { authorizedFetch, createTasksClient, errorMessage, pageInfo, SignedOutError, tokenSource } from "./index.js";

const jwt = (exp) => `h.${Buffer.from(JSON.stringify({ exp })).toString("base64url")}.s`;

test("a token is reused until shortly before exp, then fetched again", async () => {
  let clock = 1_000_000_000_000;
  let fetched = 0;
  const tokens = tokenSource(async () => {
    fetched++;
    return jwt(clock / 1000 + 60); // valid for a minute from when it is fetched
  }, {
    refreshBeforeSeconds: 10,
    now: () => clock,
  });
  const first = await tokens.get();
  assert.equal(await tokens.get(), first);
  clock += 49_000;
  assert.equal(await tokens.get(), first, "still 11 s left");
  clock += 2_000;
  await tokens.get();
  assert.equal(fetched, 2, "9 s left: refreshed");
});

test("concurrent callers share one token request", async () => {
  let fetched = 0;
  const tokens = tokenSource(async () => {
    fetched++;
    await new Promise((r) => setTimeout(r, 10));
    return jwt(Date.now() / 1000 + 600);
  });
  await Promise.all([tokens.get(), tokens.get(), tokens.get()]);
  assert.equal(fetched, 1);
});

test("a 401 gets one retry with a fresh token; a second 401 is signed out", async () => {
  const issued = [];
  const tokens = tokenSource(async () => {
    const token = jwt(Date.now() / 1000 + 600) + issued.length;
    issued.push(token);
    return token;
  });
  const seen = [];
  const statuses = [401, 200];
  const fetch = authorizedFetch(tokens, async (req) => {
    seen.push([req.headers.get("authorization"), await req.text()]);
    return new Response("[]", { status: statuses.shift() });
  });
  const answer = await fetch(new Request("http://api.test/x", { method: "POST", body: "{}" }));
  assert.equal(answer.status, 200);
  assert.deepEqual(seen, [
    [`Bearer ${issued[0]}`, "{}"],
    [`Bearer ${issued[1]}`, "{}"],
  ], "the retry resends the body with the new token");

  const refused = authorizedFetch(tokens, async () => new Response("", { status: 401 }));
  await assert.rejects(refused(new Request("http://api.test/x")), SignedOutError);
});

test("callers refused together refresh once", async () => {
  let fetched = 0;
  const tokens = tokenSource(async () => {
    fetched++;
    return jwt(Date.now() / 1000 + 600) + fetched;
  });
  const stale = await tokens.get();
  // Three requests sent with the same token come back 401 at different times: the first
  // refresh serves the others.
  const fetch = authorizedFetch(tokens, async (req) => {
    const status = req.headers.get("authorization") === `Bearer ${stale}` ? 401 : 200;
    await new Promise((r) => setTimeout(r, status === 401 ? 5 + 10 * Math.random() : 0));
    return new Response("[]", { status });
  });
  const answers = await Promise.all([1, 2, 3].map(() => fetch(new Request("http://api.test/x"))));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200]);
  assert.equal(fetched, 2, "one token at first, one refresh for all three refusals");
});

test("a token is kept for its own lifetime, whatever this machine's clock says", async () => {
  const issuerNow = 1_000_000_000;
  let fetched = 0;
  const token = () => {
    fetched++;
    const payload = { iat: issuerNow, exp: issuerNow + 900 };
    return `h.${Buffer.from(JSON.stringify(payload)).toString("base64url")}.s`;
  };
  for (const skewSeconds of [-1200, 0, 1200]) {
    fetched = 0;
    let clock = (issuerNow + skewSeconds) * 1000;
    const tokens = tokenSource(async () => token(), { now: () => clock });
    await tokens.get();
    clock += 800_000;
    await tokens.get();
    assert.equal(fetched, 1, `kept 800 s with the clock ${skewSeconds} s off`);
    clock += 95_000;
    await tokens.get();
    assert.equal(fetched, 2, `refreshed near its end with the clock ${skewSeconds} s off`);
  }
});

test("clear() forgets a token request under way: it neither fills the cache nor answers later callers", async () => {
  const users = ["alice", "bob"];
  let release;
  const tokens = tokenSource(async () => {
    const sub = users.shift();
    if (sub === "alice") await new Promise((r) => (release = r)); // alice's request is slow
    return `h.${Buffer.from(JSON.stringify({ sub, exp: Date.now() / 1000 + 600 })).toString("base64url")}.s`;
  });
  const sub = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url")).sub;
  const before = tokens.get(); // alice, signed in
  await new Promise((r) => setImmediate(r));
  tokens.clear(); // alice signs out while her token request is under way; bob signs in
  const after = tokens.get();
  release();
  assert.equal(sub(await before), "alice", "the caller from before gets what it asked for");
  assert.equal(sub(await after), "bob", "a caller after clear() gets a token of its own");
  assert.equal(sub(await tokens.get()), "bob", "and alice's late answer did not fill the cache");
});

test("a token source whose fetch throws at once is asked again next time", async () => {
  let calls = 0;
  const tokens = tokenSource(() => {
    calls++;
    if (calls === 1) throw new Error("token endpoint down");
    return jwt(Date.now() / 1000 + 600);
  });
  await assert.rejects(tokens.get(), /token endpoint down/);
  assert.ok(await tokens.get());
  assert.equal(calls, 2);
});

test("no token at all is signed out, without calling the API", async () => {
  let called = false;
  const fetch = authorizedFetch(tokenSource(async () => null), async () => {
    called = true;
    return new Response("");
  });
  await assert.rejects(fetch(new Request("http://api.test/x")), SignedOutError);
  assert.equal(called, false);
});

// The bearer token is the whole credential: the session cookie (fetch's default
// "same-origin" sends it whenever the gateway shares the page's origin) must not go along, and
// a redirect must not carry the token elsewhere (the Rust client refuses them too).
const sentWith = (req) => ({ credentials: req.credentials, redirect: req.redirect });

test("the typed client's calls omit cookies and refuse redirects, on the retry too", async () => {
  const tokens = tokenSource(async () => jwt(Date.now() / 1000 + 600));
  const seen = [];
  const statuses = [401, 200];
  const api = createTasksClient({
    baseUrl: "http://api.test",
    tokens,
    fetch: async (req) => {
      seen.push(sentWith(req));
      return new Response("[]", { status: statuses.shift(), headers: { "content-type": "application/json" } });
    },
  });
  const { response } = await api.GET("/api/{user_id}/tasks", { params: { path: { user_id: "u" } } });
  assert.equal(response.status, 200);
  assert.deepEqual(seen, [
    { credentials: "omit", redirect: "error" },
    { credentials: "omit", redirect: "error" },
  ]);
});

test("the typed client still sends what a caller asks for explicitly", async () => {
  const seen = [];
  const fetch = async (req) => {
    seen.push(sentWith(req));
    return new Response("[]", { headers: { "content-type": "application/json" } });
  };
  const tokens = tokenSource(async () => jwt(Date.now() / 1000 + 600));
  const path = { params: { path: { user_id: "u" } } };
  const chosen = createTasksClient({ baseUrl: "http://api.test", tokens, fetch, credentials: "include", redirect: "manual" });
  await chosen.GET("/api/{user_id}/tasks", path);
  const plain = createTasksClient({ baseUrl: "http://api.test", tokens, fetch });
  await plain.GET("/api/{user_id}/tasks", { ...path, credentials: "same-origin" });
  assert.deepEqual(seen, [
    { credentials: "include", redirect: "manual" },
    { credentials: "same-origin", redirect: "error" },
  ]);
});

test("authorizedFetch sends any Request without cookies and refusing redirects, body intact", async () => {
  const tokens = tokenSource(async () => jwt(Date.now() / 1000 + 600));
  const seen = [];
  const statuses = [401, 200];
  const fetch = authorizedFetch(tokens, async (req) => {
    seen.push({ ...sentWith(req), body: await req.text() });
    return new Response("[]", { status: statuses.shift() });
  });
  const request = new Request("http://api.test/x", { method: "POST", body: "{}", credentials: "include" });
  assert.equal((await fetch(request)).status, 200);
  assert.deepEqual(seen, [
    { credentials: "omit", redirect: "error", body: "{}" },
    { credentials: "omit", redirect: "error", body: "{}" },
  ]);

  const chosen = [];
  const own = authorizedFetch(tokens, async (req) => (chosen.push(sentWith(req)), new Response("")), {
    credentials: "same-origin",
  });
  await own(new Request("http://api.test/x"));
  assert.deepEqual(chosen, [{ credentials: "same-origin", redirect: "error" }]);
});

test("page info reads the total and the next/prev links", () => {
  const headers = {
    "x-total-count": "7",
    link: '</api/u/tasks?limit=3&offset=6>; rel="next", </api/u/tasks?limit=3&offset=0>; rel="prev"',
  };
  assert.deepEqual(pageInfo(new Response("[]", { headers })), {
    total: 7,
    next: "/api/u/tasks?limit=3&offset=6",
    prev: "/api/u/tasks?limit=3&offset=0",
  });
  assert.deepEqual(pageInfo(new Response("[]")), { total: null, next: null, prev: null });
});

test("errors read as sentences", () => {
  const body = { detail: [{ type: "string_too_short", loc: ["body", "title"], msg: "String should have at least 1 character" }] };
  assert.equal(errorMessage(422, body), "title: String should have at least 1 character");
  assert.match(errorMessage(401, {}), /signed out/);
  assert.match(errorMessage(503, {}), /Try again/);
  assert.match(errorMessage(429, { detail: "Too many requests" }), /Wait a moment/);
  assert.equal(errorMessage(404, { detail: "Task not found" }), "Task not found");
});
