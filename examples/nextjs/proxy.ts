// Same-origin mode: the browser calls /api/auth/* and /api/{user_id}/tasks on this app's own
// origin and they are passed on, unchanged, to the gateway (which routes /api/auth/* to Better
// Auth and verifies the bearer token on the rest). No CORS, and the session cookie stays a
// first-party cookie of this origin. In cross-origin mode the browser calls the gateway itself
// and nothing comes through here.
import { NextResponse, type NextRequest } from "next/server";
import { appConfig } from "./lib/config";

export function proxy(request: NextRequest) {
  const { gatewayUrl, browserCalls } = appConfig();
  if (browserCalls !== "same-origin") {
    return NextResponse.json({ detail: "Not Found" }, { status: 404 });
  }
  const { pathname, search } = request.nextUrl;
  return NextResponse.rewrite(new URL(`${pathname}${search}`, gatewayUrl));
}

// Only the paths the gateway serves: the app's own route handlers elsewhere under /api stay
// the app's.
export const config = {
  matcher: ["/api/auth/:path*", "/api/:user_id/tasks", "/api/:user_id/tasks/:path*"],
};
