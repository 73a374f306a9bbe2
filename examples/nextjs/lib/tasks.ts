"use client";
// The browser side of the task API, written once: a typed client (generated from the
// contract) whose token comes from Better Auth, kept until shortly before it expires,
// refreshed on demand and retried once after a 401. No token is ever put in localStorage.
import { createTasksClient, tokenSource, type TasksClient, type TokenSource } from "@better-auth-bridge/tasks-client";
import type { AuthClient } from "./auth-client";

export interface TasksApi {
  client: TasksClient;
  tokens: TokenSource;
}

export function makeTasksApi(apiBase: string, auth: AuthClient): TasksApi {
  const tokens = tokenSource(async () => {
    // GET /api/auth/token with the session cookie; an error (401) means signed out.
    const { data, error } = await auth.token();
    return error || !data ? null : data.token;
  });
  const client = createTasksClient({
    baseUrl: apiBase,
    tokens,
    credentials: apiBase ? "omit" : "same-origin",
  });
  return { client, tokens };
}
