import type { ReactNode } from "react";
import { appConfig, browserApiBase } from "@/lib/config";
import "./globals.css";

export const metadata = { title: "Tasks — Next.js + Better Auth + the gateway" };
// The gateway's address is read per request (lib/config.ts), so one build serves any stack.
export const dynamic = "force-dynamic";

export default function RootLayout({ children }: { children: ReactNode }) {
  const config = appConfig();
  return (
    <html lang="en">
      <body data-browser-calls={config.browserCalls} data-api-base={browserApiBase(config)}>
        <main>{children}</main>
      </body>
    </html>
  );
}
