import Link from "next/link";
import { appConfig, browserApiBase } from "@/lib/config";
import { TasksApp } from "./tasks-app";

export default function Home() {
  const config = appConfig();
  return (
    <>
      <h1>Tasks</h1>
      <p className="muted">
        Browser calls: <strong>{config.browserCalls}</strong> ({browserApiBase(config) || "this origin"}) ·{" "}
        <Link href="/server">server-rendered list</Link>
      </p>
      <TasksApp apiBase={browserApiBase(config)} />
    </>
  );
}
