// End-to-end test of the demo page in Debian's Chromium (via playwright-core).
//
//   AUTH_URL=http://127.0.0.1:3000 API_URL=http://127.0.0.1:8080 \
//   DEMO_URL=http://127.0.0.1:5173/ SCREENSHOT=target/e2e/demo.png node browser-test.mjs
//
// Checks first that a link naming a foreign gateway (?api=https://…) is refused, then
// signs a random user up, signs out and in again (cross-origin cookies), checks
// the JWT the page obtained (verified here against the auth server's JWKS),
// then adds two tasks, toggles one, deletes the other, asserting the list after
// each step, and saves a screenshot. AUTH_ONLY=1 stops after the auth part
// (for running before the gateway exists). Exits non-zero on any failure.
//
// Other env: CHROMIUM (default /usr/bin/chromium), STEP_TIMEOUT_MS (15000).
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { createRemoteJWKSet, jwtVerify } from "jose";

const AUTH_URL = (process.env.AUTH_URL || "http://127.0.0.1:3000").replace(/\/+$/, "");
const API_URL = (process.env.API_URL || "http://127.0.0.1:8080").replace(/\/+$/, "");
const DEMO_URL = process.env.DEMO_URL || "http://127.0.0.1:5173/";
const SCREENSHOT = resolve(process.env.SCREENSHOT || "target/e2e/demo.png");
const AUTH_ONLY = process.env.AUTH_ONLY === "1";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = Number(process.env.STEP_TIMEOUT_MS || 15000);

const pageUrl = new URL(DEMO_URL);
pageUrl.searchParams.set("auth", AUTH_URL);
pageUrl.searchParams.set("api", API_URL);

let step = "start";
const log = (msg) => console.log(`[browser-test] ${msg}`);
class AssertionFailed extends Error {}
function assert(cond, msg) {
  if (!cond) throw new AssertionFailed(`${step}: ${msg}`);
}

const userDataDir = mkdtempSync(join(tmpdir(), "demo-chromium-"));
const consoleLines = [];
let context;
let page;

// Clicks `selector` and waits until the page finished that operation.
async function act(selector) {
  const before = Number((await page.getAttribute("body", "data-ops")) || 0);
  await page.click(selector);
  await page.waitForFunction((n) => Number(document.body.dataset.ops || 0) > n, before, { timeout: TIMEOUT });
}

async function status() {
  const el = page.locator("#status");
  return { text: (await el.textContent()).trim(), ok: await el.getAttribute("data-ok"), code: await el.getAttribute("data-code") };
}

async function expectStatusOk() {
  const s = await status();
  assert(s.ok === "true" && s.text === "ok", `expected #status "ok", got "${s.text}"`);
}

async function taskList() {
  return page.$$eval("#tasks li", (lis) =>
    lis.map((li) => ({
      id: li.dataset.id,
      completed: li.dataset.completed,
      title: li.querySelector(".title")?.textContent ?? "",
      hasToggle: !!li.querySelector("button.toggle"),
      hasDelete: !!li.querySelector("button.delete"),
    })),
  );
}

function fmt(list) {
  return JSON.stringify(list.map(({ id, title, completed }) => ({ id, title, completed })));
}

async function main() {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 900, height: 760 },
  });
  page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => consoleLines.push(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.setDefaultTimeout(TIMEOUT);

  step = "foreign origin in the link";
  // A link may name only origins on this machine: another one is replaced by the default
  // (and said so), and nothing is sent to it.
  const foreign = new URL(pageUrl);
  foreign.searchParams.set("api", "https://attacker.invalid");
  const requested = [];
  const record = (request) => requested.push(request.url());
  page.on("request", record);
  await page.goto(foreign.toString());
  await page.waitForFunction(() => Number(document.body.dataset.ops || 0) >= 1);
  page.off("request", record);
  assert((await page.textContent("#api-url")) === "http://127.0.0.1:8080", "#api-url does not show the default for a foreign api=");
  assert((await page.textContent("#auth-url")) === AUTH_URL, "a loopback auth= was not kept next to a foreign api=");
  assert(await page.isVisible("#origin-warning"), "#origin-warning not shown for a foreign api=");
  assert(!requested.some((u) => new URL(u).hostname === "attacker.invalid"), `a request went to the foreign origin: ${requested.join(", ")}`);
  log(`foreign api= refused: "${(await page.textContent("#origin-warning")).trim()}"`);

  step = "open page";
  log(`opening ${pageUrl} (chromium ${context.browser()?.version() ?? "?"})`);
  await page.goto(pageUrl.toString());
  await page.waitForFunction(() => Number(document.body.dataset.ops || 0) >= 1); // initial session probe
  assert((await page.textContent("#auth-url")) === AUTH_URL, "#auth-url does not show AUTH_URL");
  assert((await page.textContent("#api-url")) === API_URL, "#api-url does not show API_URL");
  assert(!(await page.isVisible("#origin-warning")), "#origin-warning shown for loopback origins");
  assert((await page.textContent("#user-id")) === "", "#user-id should be empty before sign-in");
  await expectStatusOk();

  const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
  const email = `demo-${id}@example.test`;
  const password = `pw-${id}-Secret!`;

  step = "sign up";
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.fill("#name", `Demo ${id}`);
  await act("#signup");
  const userId = (await page.textContent("#user-id")).trim();
  assert(userId.length > 0, `no user id shown after sign-up; #status "${(await status()).text}"`);
  assert((await page.getAttribute("#jwt-info", "data-sub")) === userId, "JWT sub shown on the page differs from #user-id");
  if (!AUTH_ONLY) await expectStatusOk();
  log(`signed up ${email} -> user id ${userId}; #status "${(await status()).text}"`);

  step = "session cookie";
  const cookies = await context.cookies(AUTH_URL);
  const sessionCookie = cookies.find((c) => c.name.endsWith("session_token"));
  assert(sessionCookie, `no session cookie stored for ${AUTH_URL} (got ${cookies.map((c) => c.name).join(",") || "none"})`);
  log(`cookie ${sessionCookie.name}: sameSite=${sessionCookie.sameSite} httpOnly=${sessionCookie.httpOnly} secure=${sessionCookie.secure}`);

  step = "token from the page origin";
  // Fetch a JWT cross-origin from inside the page and verify it here.
  const token = await page.evaluate(async (auth) => {
    const r = await fetch(`${auth}/api/auth/token`, { credentials: "include" });
    return r.ok ? (await r.json()).token : `HTTP ${r.status}`;
  }, AUTH_URL);
  assert(token.split(".").length === 3, `GET /api/auth/token from the page failed: ${token}`);
  const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(`${AUTH_URL}/api/auth/jwks`)), {
    issuer: AUTH_URL,
    audience: AUTH_URL,
  }).catch((e) => assert(false, `JWT from the page does not verify: ${e.message}`));
  assert(payload.sub === userId, `JWT sub ${payload.sub} != ${userId}`);
  log(`JWT verified: alg ${protectedHeader.alg} kid ${protectedHeader.kid} sub ${payload.sub} exp in ${payload.exp - Math.floor(Date.now() / 1000)}s`);

  step = "sign out";
  await act("#signout");
  assert((await page.textContent("#user-id")) === "", "#user-id not cleared after sign-out");
  await expectStatusOk();

  step = "sign in";
  await page.fill("#email", email);
  await page.fill("#password", password);
  await page.fill("#name", "");
  await act("#signin");
  assert((await page.textContent("#user-id")).trim() === userId, "sign-in shows a different user id than sign-up");
  if (!AUTH_ONLY) await expectStatusOk();
  log(`signed in again as ${userId}; #status "${(await status()).text}"`);

  if (AUTH_ONLY) {
    log("AUTH_ONLY=1: skipping the task steps");
  } else {
    step = "initial task list";
    let list = await taskList();
    assert(list.length === 0, `new user should have no tasks, got ${fmt(list)}`);

    step = "add two tasks";
    for (const title of ["first task", "second task"]) {
      await page.fill("#new-title", title);
      await act("#add");
      await expectStatusOk();
    }
    list = await taskList();
    log(`after adding: ${fmt(list)}`);
    assert(list.length === 2, `expected 2 tasks, got ${fmt(list)}`);
    const first = list.find((t) => t.title === "first task");
    const second = list.find((t) => t.title === "second task");
    assert(first && second, `titles missing in ${fmt(list)}`);
    assert(first.id && second.id && first.id !== second.id, `tasks need distinct data-id: ${fmt(list)}`);
    assert(list.every((t) => t.completed === "false"), `new tasks must have data-completed=false: ${fmt(list)}`);
    assert(list.every((t) => t.hasToggle && t.hasDelete), "each task needs .toggle and .delete buttons");
    assert((await page.inputValue("#new-title")) === "", "#new-title not cleared after adding");

    step = "toggle first task";
    await act(`#tasks li[data-id="${first.id}"] button.toggle`);
    await expectStatusOk();
    list = await taskList();
    log(`after toggling ${first.id}: ${fmt(list)}`);
    assert(list.length === 2, `expected 2 tasks, got ${fmt(list)}`);
    assert(list.find((t) => t.id === first.id)?.completed === "true", `first task not completed: ${fmt(list)}`);
    assert(list.find((t) => t.id === second.id)?.completed === "false", `second task changed: ${fmt(list)}`);

    step = "delete second task";
    await act(`#tasks li[data-id="${second.id}"] button.delete`);
    await expectStatusOk();
    list = await taskList();
    log(`after deleting ${second.id}: ${fmt(list)}`);
    assert(list.length === 1 && list[0].id === first.id, `expected only the first task, got ${fmt(list)}`);
    assert(list[0].title === "first task" && list[0].completed === "true", `remaining task wrong: ${fmt(list)}`);

    step = "reload";
    await act("#reload");
    await expectStatusOk();
    assert((await taskList()).length === 1, "list changed after reload");
  }

  step = "screenshot";
  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  log(`screenshot saved to ${SCREENSHOT}`);
  log(AUTH_ONLY ? "PASS (auth only)" : "PASS");
}

let code = 0;
try {
  await main();
} catch (err) {
  code = 1;
  console.error(`[browser-test] FAIL: ${err instanceof AssertionFailed ? err.message : `${step}: ${err.stack || err}`}`);
  if (page) {
    try {
      const s = await status();
      console.error(`[browser-test] page #status: "${s.text}" (code ${s.code})`);
      const failShot = SCREENSHOT.replace(/(\.png)?$/, "-failure.png");
      mkdirSync(dirname(failShot), { recursive: true });
      await page.screenshot({ path: failShot, fullPage: true });
      console.error(`[browser-test] failure screenshot: ${failShot}`);
    } catch {
      /* page gone */
    }
  }
  if (consoleLines.length) console.error(`[browser-test] browser console:\n  ${consoleLines.join("\n  ")}`);
} finally {
  await context?.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(code);
