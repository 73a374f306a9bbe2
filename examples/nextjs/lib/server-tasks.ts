// The server side of the task API: a Server Component or route handler acting for the user
// whose browser sent this request. The JWT comes from Better Auth (through the gateway's
// public /api/auth route) for the session cookie the browser sent us; then the same typed
// client and token handling as in the browser.
import { cookies } from "next/headers";
import { createTasksClient, tokenSource, tokenExpiry, type TasksClient } from "@better-auth-bridge/tasks-client";
import { appConfig } from "./config";

export interface ServerTasks {
  userId: string;
  client: TasksClient;
}

/** A client acting for the signed-in user of this request, or null when signed out. */
export async function tasksForRequest(): Promise<ServerTasks | null> {
  const { gatewayUrl } = appConfig();
  const cookie = (await cookies()).toString();
  if (!cookie) return null;
  const fetchToken = async () => {
    const response = await fetch(`${gatewayUrl}/api/auth/token`, { headers: { cookie }, cache: "no-store" });
    // Only a 401 means no session (signed out, expired, or revoked); anything else (Better
    // Auth down, rate-limited) is a failure to show, not a reason to call the user signed out.
    if (response.status === 401) return null;
    if (!response.ok) throw new Error(`Better Auth answered ${response.status} to a token request`);
    return ((await response.json()) as { token?: string }).token ?? null;
  };
  // One request's worth of caching: a page making several calls asks Better Auth once.
  const tokens = tokenSource(fetchToken);
  const token = await tokens.get();
  if (!token || tokenExpiry(token) === 0) return null;
  const userId = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).sub as string;
  return { userId, client: createTasksClient({ baseUrl: gatewayUrl, tokens }) };
}
