"use client";
// The signed-in experience in the browser: Better Auth sign-up/in/out and the task list
// (create, rename, toggle, delete, filter, sort, pages), every call through the gateway with
// the typed client. Errors are shown as sentences (errorMessage), never as raw JSON.
import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { errorMessage, pageInfo, SignedOutError, type Task } from "@better-auth-bridge/tasks-client";
import { makeAuthClient, type AuthClient } from "@/lib/auth-client";
import { makeTasksApi, type TasksApi } from "@/lib/tasks";

const PAGE_SIZE = 5;
type Status = "all" | "pending" | "completed";
type Sort = "created" | "-created" | "title" | "updated";

export function TasksApp({ apiBase }: { apiBase: string }) {
  // The clients need the browser (its origin, its cookies): create them after mounting.
  const [mounted, setMounted] = useState(false);
  useEffect(() => setMounted(true), []);
  return mounted ? <Mounted apiBase={apiBase} /> : <p className="muted">Loading…</p>;
}

function Mounted({ apiBase }: { apiBase: string }) {
  const auth = useMemo(() => makeAuthClient(apiBase), [apiBase]);
  const session = auth.useSession();
  const user = session.data?.user;
  const userId = user?.id;
  // One client, and so one token cache, per signed-in user: another tab may sign out and in
  // as someone else, and the last user's token must not be sent for the next one.
  const api = useMemo(() => makeTasksApi(apiBase, auth), [apiBase, auth, userId]);
  const [message, setMessage] = useState<string | null>(null);

  // `session` is a new object on every refetch (and on every window focus): depending on it
  // would make a new `signedOut`, a new `load`, and another load after each refetch, which is
  // an endless loop of token requests if the API keeps refusing a live session's token.
  const refetch = useRef(session.refetch);
  useEffect(() => {
    refetch.current = session.refetch;
  });
  const signedOut = useCallback(async () => {
    api.tokens.clear();
    const { data } = await auth.getSession();
    if (data?.user) {
      // Better Auth says the session lives, yet the API refused its token twice: the gateway
      // and Better Auth disagree (the issuer URL, the keys, revocation settings). Loading again
      // would be refused again; say so instead.
      setMessage("You are signed in, but the task API refused your token. The gateway's configuration needs a look.");
      return;
    }
    await refetch.current();
    setMessage("You are signed out. Sign in again.");
  }, [api, auth]);

  // Only until the first answer: Better Auth refetches the session when the tab comes back,
  // pending again while signed out, and unmounting the sign-in form then would lose what the
  // user was typing.
  const answered = useRef(false);
  if (!session.isPending) answered.current = true;
  if (session.isPending && !answered.current) return <p className="muted">Checking your session…</p>;
  return (
    <>
      {message && (
        <p id="message" role="alert" className="error">
          {message}
        </p>
      )}
      {user ? (
        <>
          <section>
            Signed in as <strong id="user-name">{user.name}</strong> (<code id="user-id">{user.id}</code>){" "}
            <button
              id="signout"
              onClick={async () => {
                const { error } = await auth.signOut();
                // Refused (an origin Better Auth does not trust, say): still signed in.
                if (error) setMessage(`Could not sign out: ${error.message ?? error.statusText}`);
                else await signedOut();
              }}
            >
              Sign out
            </button>
          </section>
          <TaskList key={user.id} userId={user.id} api={api} onError={setMessage} onSignedOut={signedOut} />
        </>
      ) : (
        <SignIn auth={auth} onDone={(error) => setMessage(error)} />
      )}
    </>
  );
}

function SignIn({ auth, onDone }: { auth: AuthClient; onDone: (error: string | null) => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (kind: "up" | "in") => {
    setBusy(true);
    const { error } =
      kind === "up" ? await auth.signUp.email({ email, password, name: name || email }) : await auth.signIn.email({ email, password });
    setBusy(false);
    onDone(error ? (error.message ?? error.statusText ?? "Could not sign in") : null);
  };
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void submit("in");
  };
  return (
    <section>
      <h2>Sign in</h2>
      <form onSubmit={onSubmit}>
        <input id="email" type="email" placeholder="email" value={email} onChange={(e) => setEmail(e.target.value)} required />
        <input id="password" type="password" placeholder="password (8+ characters)" value={password} onChange={(e) => setPassword(e.target.value)} required />
        <input id="name" placeholder="name (sign-up)" value={name} onChange={(e) => setName(e.target.value)} />
        <button id="signin" type="submit" disabled={busy}>Sign in</button>
        <button id="signup" type="button" disabled={busy} onClick={() => void submit("up")}>Sign up</button>
      </form>
    </section>
  );
}

interface ListState {
  tasks: Task[];
  total: number | null;
  next: number | null;
  prev: number | null;
}

function offsetOf(link: string | null): number | null {
  if (!link) return null;
  const offset = new URL(link, "http://link.invalid").searchParams.get("offset");
  return offset === null ? null : Number(offset);
}

function TaskList({
  userId,
  api,
  onError,
  onSignedOut,
}: {
  userId: string;
  api: TasksApi;
  onError: (message: string | null) => void;
  onSignedOut: () => Promise<void>;
}) {
  const [status, setStatus] = useState<Status>("all");
  const [sort, setSort] = useState<Sort>("created");
  const [offset, setOffset] = useState(0);
  const [list, setList] = useState<ListState | null>(null);
  const [title, setTitle] = useState("");
  const [busy, setBusy] = useState(false);
  const [loads, setLoads] = useState(0);
  const path = { user_id: userId };

  /** Runs one API call; a failure becomes a readable message, a lost session "signed out". */
  const run = useCallback(
    async (call: () => Promise<{ error?: unknown; response: Response }>): Promise<boolean> => {
      setBusy(true);
      try {
        const { error, response } = await call();
        if (error !== undefined || !response.ok) {
          onError(errorMessage(response.status, error));
          return false;
        }
        onError(null);
        return true;
      } catch (e) {
        if (e instanceof SignedOutError) await onSignedOut();
        else onError("The service could not be reached. Try again in a moment.");
        return false;
      } finally {
        setBusy(false);
      }
    },
    [onError, onSignedOut],
  );

  // The last load asked for wins: a slower answer to an earlier filter or page must not
  // overwrite a later one.
  const latest = useRef(0);
  const load = useCallback(async () => {
    const mine = ++latest.current;
    await run(async () => {
      const result = await api.client.GET("/api/{user_id}/tasks", {
        params: { path: { user_id: userId }, query: { status, sort, limit: PAGE_SIZE, offset } },
      });
      if (result.data && mine === latest.current) {
        const info = pageInfo(result.response);
        setList({ tasks: result.data, total: info.total, next: offsetOf(info.next), prev: offsetOf(info.prev) });
      }
      return result;
    });
    setLoads((n) => n + 1);
  }, [api, run, userId, status, sort, offset]);

  useEffect(() => {
    void load();
  }, [load]);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const ok = await run(() => api.client.POST("/api/{user_id}/tasks", { params: { path }, body: { title } }));
    if (ok) {
      setTitle("");
      await load();
    }
  };
  const change = async (call: () => Promise<{ error?: unknown; response: Response }>) => {
    if (await run(call)) await load();
  };

  const from = list && list.tasks.length ? offset + 1 : 0;
  return (
    <section data-busy={busy} data-loads={loads}>
      <form onSubmit={create}>
        <input id="new-title" placeholder="What needs doing?" value={title} onChange={(e) => setTitle(e.target.value)} />
        <button id="add" type="submit" disabled={busy}>Add</button>
      </form>
      <p>
        <label>
          Show{" "}
          <select id="status-filter" value={status} onChange={(e) => { setStatus(e.target.value as Status); setOffset(0); }}>
            <option value="all">all</option>
            <option value="pending">pending</option>
            <option value="completed">completed</option>
          </select>
        </label>{" "}
        <label>
          sorted by{" "}
          <select id="sort" value={sort} onChange={(e) => { setSort(e.target.value as Sort); setOffset(0); }}>
            <option value="created">oldest first</option>
            <option value="-created">newest first</option>
            <option value="title">title</option>
            <option value="updated">recently changed</option>
          </select>
        </label>
      </p>
      <ul id="tasks">
        {list?.tasks.map((task) => (
          <TaskRow key={task.id} task={task} userId={userId} api={api} change={change} />
        ))}
      </ul>
      <p>
        <button id="prev" disabled={busy || list?.prev == null} onClick={() => setOffset(list?.prev ?? 0)}>← Previous</button>{" "}
        <span id="range">
          {from}–{offset + (list?.tasks.length ?? 0)} of <span id="total">{list?.total ?? "?"}</span>
        </span>{" "}
        <button id="next" disabled={busy || list?.next == null} onClick={() => setOffset(list?.next ?? 0)}>Next →</button>
      </p>
    </section>
  );
}

function TaskRow({
  task,
  userId,
  api,
  change,
}: {
  task: Task;
  userId: string;
  api: TasksApi;
  change: (call: () => Promise<{ error?: unknown; response: Response }>) => Promise<void>;
}) {
  const [editing, setEditing] = useState<string | null>(null);
  const path = { user_id: userId, task_id: task.id };
  return (
    <li data-id={task.id} data-completed={String(task.completed)}>
      <input
        className="toggle"
        type="checkbox"
        checked={task.completed}
        aria-label="done"
        // The state wanted, not a toggle: a double click or a second tab sets it twice, the
        // same way, instead of flipping it back.
        onChange={() =>
          void change(() =>
            api.client.PATCH("/api/{user_id}/tasks/{task_id}/complete", {
              params: { path },
              body: { completed: !task.completed },
            }),
          )
        }
      />
      {editing === null ? (
        <span className="title">{task.title}</span>
      ) : (
        <input className="rename-input" value={editing} onChange={(e) => setEditing(e.target.value)} />
      )}
      {editing === null ? (
        <button className="rename" onClick={() => setEditing(task.title)}>Rename</button>
      ) : (
        <button
          className="save"
          onClick={async () => {
            await change(() => api.client.PUT("/api/{user_id}/tasks/{task_id}", { params: { path }, body: { title: editing } }));
            setEditing(null);
          }}
        >
          Save
        </button>
      )}
      <button className="delete" onClick={() => void change(() => api.client.DELETE("/api/{user_id}/tasks/{task_id}", { params: { path } }))}>
        Delete
      </button>
    </li>
  );
}
