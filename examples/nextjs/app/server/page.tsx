// A Server Component listing the signed-in user's tasks: rendered on the server with a token
// obtained from the incoming cookies, so the list is in the HTML before any script runs.
import Link from "next/link";
import { errorMessage, pageInfo, SignedOutError } from "@better-auth-bridge/tasks-client";
import { tasksForRequest } from "@/lib/server-tasks";

export default async function ServerList() {
  let body;
  try {
    const tasks = await tasksForRequest();
    if (!tasks) {
      body = <p id="server-status">Signed out: sign in on the main page to see your tasks here.</p>;
    } else {
      const { data, error, response } = await tasks.client.GET("/api/{user_id}/tasks", {
        params: { path: { user_id: tasks.userId }, query: { sort: "title", limit: 100 } },
      });
      body = data ? (
        <>
          <p id="server-status">
            {pageInfo(response).total} tasks of <code id="server-user-id">{tasks.userId}</code>, rendered on the server.
          </p>
          <ul id="server-tasks">
            {data.map((task) => (
              <li key={task.id} data-id={task.id} data-completed={String(task.completed)}>
                <span className="title">{task.title}</span>
              </li>
            ))}
          </ul>
        </>
      ) : (
        <p id="server-status" className="error">{errorMessage(response.status, error)}</p>
      );
    }
  } catch (e) {
    if (!(e instanceof SignedOutError)) throw e;
    body = <p id="server-status">Signed out: sign in on the main page to see your tasks here.</p>;
  }
  return (
    <>
      <h1>Your tasks (server-rendered)</h1>
      {body}
      <p>
        <Link href="/">Back</Link>
      </p>
    </>
  );
}
