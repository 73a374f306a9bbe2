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

/**
 * The task API for one signed-in user. Make a new one when the user changes (another tab may
 * sign out and in as someone else): its token cache belongs to the user it was made for.
 */
export function makeTasksApi(apiBase: string, auth: AuthClient): TasksApi {
  const tokens = tokenSource(async () => {
    // GET /api/auth/token with the session cookie. Only a 401 means signed out; anything else
    // (Better Auth down, rate-limited) is a failure to show, not a reason to sign anyone out.
    const { data, error } = await auth.token();
    if (error) {
      if (error.status === 401) return null;
      throw new Error(`Better Auth answered ${error.status} to a token request`);
    }
    return data?.token ?? null;
  });
  // No cookies, on either origin: the bearer token is the whole credential, and the session
  // cookie (a week-long, whole-account credential) has no business reaching the task API.
  const client = createTasksClient({ baseUrl: apiBase, tokens, credentials: "omit" });
  return { client, tokens };
}
