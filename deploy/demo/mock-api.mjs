// TEST DOUBLE of the task API behind the gateway, for exercising the demo
// page and browser-test.mjs before the real Rust gateway exists. It is NOT the
// gateway: in-memory tasks, no persistence.
//
//   AUTH_URL=http://127.0.0.1:3000 MOCK_API_PORT=8099 \
//   ALLOWED_ORIGINS=http://127.0.0.1:5173 node mock-api.mjs
//
// Verifies `Authorization: Bearer <jwt>` against ${AUTH_URL}/api/auth/jwks
// (iss = aud = AUTH_URL), requires sub == {user_id} in the path, and serves
//   GET    /api/{user_id}/tasks                 -> 200 [task]
//   POST   /api/{user_id}/tasks {title,...}     -> 201 task
//   PATCH  /api/{user_id}/tasks/{id}/complete   -> 200 task (toggles completed)
//   DELETE /api/{user_id}/tasks/{id}            -> 204
// Errors are JSON {"detail": "..."} with 401/403/404/422.
import http from "node:http";
import { createRemoteJWKSet, jwtVerify } from "jose";

const AUTH_URL = (process.env.AUTH_URL || "http://127.0.0.1:3000").replace(/\/+$/, "");
const PORT = Number.parseInt(process.env.MOCK_API_PORT || "8099", 10);
const ORIGINS = (process.env.ALLOWED_ORIGINS || "http://127.0.0.1:5173").split(",").map((s) => s.trim()).filter(Boolean);
const JWKS = createRemoteJWKSet(new URL(`${AUTH_URL}/api/auth/jwks`));

const tasks = new Map(); // id -> task
let nextId = 1;

function send(res, status, body) {
  if (status === 204) return res.writeHead(204).end();
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

async function readJson(req) {
  let raw = "";
  for await (const chunk of req) raw += chunk;
  if (!raw) return {};
  return JSON.parse(raw);
}

const server = http.createServer(async (req, res) => {
  const origin = req.headers.origin;
  res.setHeader("Vary", "Origin");
  if (origin && ORIGINS.includes(origin)) {
    res.setHeader("Access-Control-Allow-Origin", origin);
    if (req.method === "OPTIONS") {
      res.setHeader("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS");
      res.setHeader("Access-Control-Allow-Headers", "authorization, content-type");
      res.setHeader("Access-Control-Max-Age", "600");
    }
  }
  if (req.method === "OPTIONS") return send(res, 204);

  const url = new URL(req.url || "/", "http://x");
  const m = url.pathname.match(/^\/api\/([^/]+)\/tasks(?:\/([^/]+)(\/complete)?)?\/?$/);
  if (!m) return send(res, 404, { detail: "Not Found" });
  const userId = decodeURIComponent(m[1]);
  const taskId = m[2] !== undefined ? Number(m[2]) : undefined;

  const auth = req.headers.authorization || "";
  if (!auth.startsWith("Bearer ")) return send(res, 401, { detail: "Missing bearer token" });
  let payload;
  try {
    ({ payload } = await jwtVerify(auth.slice(7), JWKS, { issuer: AUTH_URL, audience: AUTH_URL }));
  } catch (e) {
    return send(res, 401, { detail: `Invalid token: ${e.code || e.message}` });
  }
  if (payload.sub !== userId) return send(res, 403, { detail: "Token subject does not match user_id" });

  const now = new Date().toISOString();
  const own = (id) => {
    const t = tasks.get(id);
    return t && t.user_id === userId ? t : undefined;
  };
  try {
    if (taskId === undefined && req.method === "GET") {
      return send(res, 200, [...tasks.values()].filter((t) => t.user_id === userId));
    }
    if (taskId === undefined && req.method === "POST") {
      const body = await readJson(req);
      if (typeof body.title !== "string" || !body.title.trim()) return send(res, 422, { detail: "title is required" });
      const t = { id: nextId++, user_id: userId, title: body.title, description: body.description ?? null, completed: false, created_at: now, updated_at: now };
      tasks.set(t.id, t);
      return send(res, 201, t);
    }
    if (taskId !== undefined && m[3] && req.method === "PATCH") {
      const t = own(taskId);
      if (!t) return send(res, 404, { detail: "Task not found" });
      t.completed = !t.completed;
      t.updated_at = now;
      return send(res, 200, t);
    }
    if (taskId !== undefined && !m[3] && req.method === "DELETE") {
      if (!own(taskId)) return send(res, 404, { detail: "Task not found" });
      tasks.delete(taskId);
      return send(res, 204);
    }
    if (taskId !== undefined && !m[3] && req.method === "GET") {
      const t = own(taskId);
      return t ? send(res, 200, t) : send(res, 404, { detail: "Task not found" });
    }
    return send(res, 405, { detail: "Method Not Allowed" });
  } catch (e) {
    return send(res, 400, { detail: `Bad request: ${e.message}` });
  }
});

server.listen(PORT, "127.0.0.1", () => {
  console.log(`mock-api (test double): http://127.0.0.1:${PORT} verifying JWTs from ${AUTH_URL}; CORS for ${ORIGINS.join(",")}`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
