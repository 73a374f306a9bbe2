// Declarations for index.js. The API's own types are generated into schema.d.ts from
// specs/contracts/openapi.yaml (`npm run generate`); do not edit that file by hand.
import type { Client } from "openapi-fetch";
import type { components, paths } from "./schema";

export type { components, paths };
export type Task = components["schemas"]["Task"];
export type TaskCreate = components["schemas"]["TaskCreate"];
export type TaskUpdate = components["schemas"]["TaskUpdate"];
export type FieldError = components["schemas"]["FieldError"];
export type TasksClient = Client<paths>;

export declare class SignedOutError extends Error {}

export interface TokenSource {
  /** The cached JWT, or a fresh one when there is none, it nears its end, or `forceRefresh`
   * (with `refused`, the token the API refused: only if the cached one is still that). */
  get(options?: { forceRefresh?: boolean; refused?: string }): Promise<string | null>;
  /** Forgets the token and any request for one under way (sign-out, another user). */
  clear(): void;
}

export declare function tokenExpiry(token: string): number;
export declare function tokenSource(
  fetchToken: () => Promise<string | null | undefined>,
  options?: { refreshBeforeSeconds?: number; now?: () => number },
): TokenSource;
export declare function authorizedFetch(
  tokens: TokenSource,
  baseFetch?: (request: Request) => Promise<Response>,
  /** Sent with every request, whatever the Request says; default "omit" and "error". */
  options?: { credentials?: RequestCredentials; redirect?: RequestRedirect },
): (request: Request) => Promise<Response>;
export declare function createTasksClient(options: {
  baseUrl: string;
  tokens: TokenSource;
  fetch?: (request: Request) => Promise<Response>;
  /** Default "omit": the session cookie never goes to the task API. */
  credentials?: RequestCredentials;
  /** Default "error": a redirect is refused, so the token never follows one. */
  redirect?: RequestRedirect;
}): TasksClient;
export declare function pageInfo(response: Response): {
  total: number | null;
  next: string | null;
  prev: string | null;
};
export declare function errorMessage(status: number, body: unknown): string;
