// CI's guard that the committed types are what the contract generates: regenerates
// schema.d.ts into a temporary file with the pinned openapi-typescript and fails on any
// difference, printing the command that brings the committed copy up to date.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "tasks-client-"));
try {
  const fresh = join(dir, "schema.d.ts");
  execFileSync("npx", ["--no-install", "openapi-typescript", "../../specs/contracts/openapi.yaml", "--output", fresh], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (readFileSync(fresh, "utf8") !== readFileSync("schema.d.ts", "utf8")) {
    console.error("clients/typescript/schema.d.ts differs from what specs/contracts/openapi.yaml generates.");
    console.error("Regenerate and commit it: (cd clients/typescript && npm run generate)");
    process.exit(1);
  }
  console.log("schema.d.ts matches specs/contracts/openapi.yaml");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
