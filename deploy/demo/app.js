// Tasks demo: Better Auth sign-up/sign-in (cookies, cross-origin) + a JWT from
// the auth server, used as a Bearer token against the task API gateway.
//
// Query parameters: ?auth=<Better Auth origin>&api=<gateway origin>, each accepted only as
// http:// on 127.0.0.1, localhost or [::1] (origins.js says why); anything else falls back to
// the default, with the reason in #origin-warning and the console.
//
// While an operation runs, <body data-busy="true">; afterwards "false",
// <body data-ops> counts finished operations, and #status holds "ok" or the
// last error ("<status> <detail>"), with data-ok="true|false" and
// data-code="<http status>" (0 for network errors) for tests.

import { demoOrigins } from "./origins.js";

const { auth: AUTH, api: API, rejected } = demoOrigins(location.search);

const $ = (sel) => document.querySelector(sel);
$("#auth-url").textContent = AUTH;
$("#api-url").textContent = API;
if (rejected.length) {
  const warning = $("#origin-warning");
  warning.textContent = `Ignored from the address: ${rejected.join("; ")}.`;
  warning.hidden = false;
  for (const why of rejected) console.warn(`demo: ignored ${why}`);
}

let userId = null;
let jwt = null; // { token, exp, alg, kid }

// ----------------------------------------------------------------- status --

class HttpError extends Error {
  constructor(status, detail) {
    super(`${status} ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

function setStatus(ok, text, code = "") {
  const el = $("#status");
  el.textContent = ok ? "ok" : text;
  el.dataset.ok = String(ok);
  el.dataset.code = String(code);
}

async function errorFrom(res) {
  let detail = res.statusText || "error";
  try {
    const body = await res.json();
    // Gateway/API errors carry {detail}; Better Auth errors carry {message, code}.
    detail = typeof body?.detail === "string" ? body.detail : body?.detail !== undefined
      ? JSON.stringify(body.detail)
      : body?.message || body?.code || detail;
  } catch {
    /* not JSON */
  }
  return new HttpError(res.status, detail);
}

// Runs one UI operation: marks the page busy, reports "ok" or the error.
async function run(op) {
  document.body.dataset.busy = "true";
  try {
    await op();
    setStatus(true);
  } catch (err) {
    console.error(err);
    if (err instanceof HttpError) setStatus(false, `${err.status} ${err.detail}`, err.status);
    else setStatus(false, `error ${err.message}`, 0);
  } finally {
    document.body.dataset.busy = "false";
    document.body.dataset.ops = String(Number(document.body.dataset.ops || 0) + 1);
  }
}

// ------------------------------------------------------------------- auth --

async function authFetch(path, init = {}) {
  const res = await fetch(`${AUTH}${path}`, {
    credentials: "include",
    ...init,
    headers: { accept: "application/json", ...(init.body ? { "content-type": "application/json" } : {}), ...init.headers },
  });
  if (!res.ok) throw await errorFrom(res);
  return res;
}

function decodeJwt(token) {
  const [h, p] = token.split(".").slice(0, 2).map((s) => JSON.parse(atob(s.replace(/-/g, "+").replace(/_/g, "/"))));
  return { header: h, payload: p };
}

async function refreshJwt() {
  const res = await authFetch("/api/auth/token");
  const { token } = await res.json();
  const { header, payload } = decodeJwt(token);
  jwt = { token, exp: payload.exp, alg: header.alg, kid: header.kid, sub: payload.sub };
  const info = $("#jwt-info");
  info.textContent = `alg ${jwt.alg}, kid ${jwt.kid}, sub ${jwt.sub}, exp ${new Date(jwt.exp * 1000).toLocaleTimeString()}`;
  info.dataset.sub = jwt.sub;
  info.dataset.alg = jwt.alg;
  info.dataset.kid = jwt.kid;
  return jwt.token;
}

// Tokens may be short-lived (tests use 5s): reuse one only while it has more
// than 2 seconds left.
async function bearer() {
  if (jwt && jwt.exp - Date.now() / 1000 > 2) return jwt.token;
  return refreshJwt();
}

function showSignedIn(user) {
  userId = user.id;
  $("#user-id").textContent = user.id;
  $("#user-email").textContent = user.email ? `(${user.email})` : "";
  $("#task-ui").hidden = false;
  $("#signout").hidden = false;
}

function showSignedOut() {
  userId = null;
  jwt = null;
  $("#user-id").textContent = "";
  $("#user-email").textContent = "";
  const info = $("#jwt-info");
  info.textContent = "(none)";
  delete info.dataset.sub;
  $("#task-ui").hidden = true;
  $("#signout").hidden = true;
  $("#tasks").replaceChildren();
}

// After sign-up/sign-in: read the session (user id), get a JWT, load tasks.
async function afterSignIn() {
  const res = await authFetch("/api/auth/get-session");
  const session = await res.json();
  if (!session?.user?.id) throw new HttpError(401, "no session after sign-in (cookie not stored?)");
  showSignedIn(session.user);
  await refreshJwt();
  await loadTasks();
}

function credentials() {
  return { email: $("#email").value.trim(), password: $("#password").value };
}

$("#signup").addEventListener("click", () =>
  run(async () => {
    const body = { ...credentials(), name: $("#name").value.trim() || credentials().email };
    await authFetch("/api/auth/sign-up/email", { method: "POST", body: JSON.stringify(body) });
    await afterSignIn();
  }),
);

$("#signin").addEventListener("click", () =>
  run(async () => {
    await authFetch("/api/auth/sign-in/email", { method: "POST", body: JSON.stringify(credentials()) });
    await afterSignIn();
  }),
);

$("#signout").addEventListener("click", () =>
  run(async () => {
    await authFetch("/api/auth/sign-out", { method: "POST", body: "{}" });
    showSignedOut();
  }),
);

// -------------------------------------------------------------------- api --

async function apiFetch(method, path, body) {
  const send = async (token) =>
    fetch(`${API}${path}`, {
      method,
      headers: {
        accept: "application/json",
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  let res = await send(await bearer());
  if (res.status === 401) res = await send(await refreshJwt()); // token expired in flight
  if (!res.ok) throw await errorFrom(res);
  return res;
}

const tasksPath = () => `/api/${encodeURIComponent(userId)}/tasks`;

function renderTasks(tasks) {
  const items = tasks.map((t) => {
    const li = document.createElement("li");
    li.dataset.id = String(t.id);
    li.dataset.completed = String(Boolean(t.completed));
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = t.title;
    const toggle = document.createElement("button");
    toggle.className = "toggle";
    toggle.type = "button";
    toggle.textContent = t.completed ? "Mark open" : "Complete";
    toggle.addEventListener("click", () =>
      run(async () => {
        await apiFetch("PATCH", `${tasksPath()}/${encodeURIComponent(t.id)}/complete`);
        await loadTasks();
      }),
    );
    const del = document.createElement("button");
    del.className = "delete";
    del.type = "button";
    del.textContent = "Delete";
    del.addEventListener("click", () =>
      run(async () => {
        await apiFetch("DELETE", `${tasksPath()}/${encodeURIComponent(t.id)}`);
        await loadTasks();
      }),
    );
    li.append(title, toggle, del);
    return li;
  });
  $("#tasks").replaceChildren(...items);
}

async function loadTasks() {
  const res = await apiFetch("GET", tasksPath());
  const tasks = await res.json();
  renderTasks(Array.isArray(tasks) ? tasks : tasks.items || tasks.tasks || []);
}

$("#add").addEventListener("click", () =>
  run(async () => {
    const title = $("#new-title").value.trim();
    await apiFetch("POST", tasksPath(), { title });
    $("#new-title").value = "";
    await loadTasks();
  }),
);
$("#new-title").addEventListener("keydown", (e) => {
  if (e.key === "Enter") $("#add").click();
});
$("#reload").addEventListener("click", () => run(loadTasks));

// On load: resume an existing session (cookie) if there is one.
run(async () => {
  const res = await fetch(`${AUTH}/api/auth/get-session`, { credentials: "include" }).catch(() => null);
  if (!res || !res.ok) return;
  const session = await res.json().catch(() => null);
  if (session?.user?.id) await afterSignIn();
});
