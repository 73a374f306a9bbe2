// Tiny static file server for the demo page.
//   DEMO_PORT=5173 node serve.mjs   ->  http://127.0.0.1:5173/?auth=...&api=...
import http from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL(".", import.meta.url));
const PORT = Number.parseInt(process.env.DEMO_PORT || "5173", 10);
const HOST = "127.0.0.1";
// Only the page itself is served (not node_modules, tests or package files).
const FILES = new Set(["index.html", "app.js", "origins.js"]);
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
};

const server = http.createServer(async (req, res) => {
  let path;
  try {
    path = decodeURIComponent(new URL(req.url || "/", "http://x").pathname);
  } catch {
    res.writeHead(400).end("bad request");
    return;
  }
  if (path === "/") path = "/index.html";
  const rel = normalize(path).replace(/^[/\\]+/, "");
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { allow: "GET, HEAD" }).end();
    return;
  }
  if (!FILES.has(rel) || rel.includes(sep + "..")) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    return;
  }
  try {
    const body = await readFile(join(ROOT, rel));
    res.writeHead(200, {
      "content-type": TYPES[extname(rel)] || "application/octet-stream",
      "content-length": body.length,
      "cache-control": "no-store",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  } catch {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
  }
});

server.listen(PORT, HOST, () => {
  console.log(`demo: serving ${ROOT} on http://${HOST}:${PORT}/ (add ?auth=<better-auth url>&api=<gateway url>)`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
