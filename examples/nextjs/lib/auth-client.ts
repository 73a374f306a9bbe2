"use client";
// The Better Auth client with the JWT plugin. Its session lives in an httpOnly cookie; the
// JWT the task API wants comes from authClient.token() and is only ever held in memory
// (lib/tasks.ts).
import { createAuthClient } from "better-auth/react";
import { jwtClient } from "better-auth/client/plugins";

export function makeAuthClient(apiBase: string) {
  return createAuthClient({
    // Better Auth's routes are under /api/auth on the gateway (its public route), reached on
    // this origin (same-origin mode) or on the gateway's (cross-origin: cookies need
    // credentials: "include").
    baseURL: apiBase || window.location.origin,
    fetchOptions: { credentials: "include" },
    plugins: [jwtClient()],
  });
}

export type AuthClient = ReturnType<typeof makeAuthClient>;
