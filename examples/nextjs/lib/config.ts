// Where the gateway is and how the browser reaches it, read when a request is served (not
// when the app is built), so one build runs against any stack. Server-only.

export type BrowserCalls = "same-origin" | "cross-origin";

export interface AppConfig {
  /** The gateway's base URL as this server reaches it, e.g. http://127.0.0.1:8080. */
  gatewayUrl: string;
  /**
   * same-origin: the browser calls /api/... on this app's own origin and proxy.ts passes
   * them to the gateway (no CORS; cookies stay first-party). cross-origin: the browser calls
   * the gateway's origin directly, which must list this app's origin in
   * CORS_ALLOWED_ORIGINS (and Better Auth in TRUSTED_ORIGINS).
   */
  browserCalls: BrowserCalls;
}

export function appConfig(): AppConfig {
  const gatewayUrl = (process.env.GATEWAY_URL ?? "").replace(/\/+$/, "");
  if (!gatewayUrl) throw new Error("GATEWAY_URL is not set: the gateway's base URL, e.g. http://127.0.0.1:8080");
  const browserCalls = (process.env.BROWSER_CALLS ?? "same-origin") as BrowserCalls;
  if (browserCalls !== "same-origin" && browserCalls !== "cross-origin") {
    throw new Error(`BROWSER_CALLS must be same-origin or cross-origin, got "${browserCalls}"`);
  }
  return { gatewayUrl, browserCalls };
}

/** The base URL the browser uses for /api/auth and /api/{user}/tasks ("" = this origin). */
export function browserApiBase(config: AppConfig): string {
  return config.browserCalls === "cross-origin" ? config.gatewayUrl : "";
}
