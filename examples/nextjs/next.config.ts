import path from "node:path";
import type { NextConfig } from "next";

// The typed client is a package of this repository (clients/typescript), linked by npm from
// outside this folder; the bundler and the output tracing must be allowed to look there.
const repoRoot = path.join(__dirname, "../..");

const nextConfig: NextConfig = {
  turbopack: { root: repoRoot },
  outputFileTracingRoot: repoRoot,
  poweredByHeader: false,
};

export default nextConfig;
