// Chats: the caller's threads from GET /api/threads, each opened in the ChatComposite.
import type { Page, Thread } from "../api";
import type { TabProps } from "../App";
import { useLoad } from "./useList";

export function ChatsTab({ session, report, openChat }: TabProps) {
  const [threads, reload] = useLoad(() => session.api<Page<Thread>>("GET", "/api/threads").then((p) => p.items), report);
  return (
    <div className="card" data-testid="chats">
      <div className="row"><h2 style={{ flex: 1 }}>Chats</h2><button onClick={reload}>Refresh</button></div>
      {!session.config.acsEndpoint && <p className="notice">No ACS endpoint from GET /api/client-config: chats cannot open.</p>}
      {threads === null && <p className="muted">Loading…</p>}
      {threads?.length === 0 && <p className="muted">No chats yet: a club, a meeting or a friend's Chat button starts one.</p>}
      <ul className="list">
        {threads?.map((t) => (
          <li key={t.threadId} data-testid={`thread-${t.threadId}`}>
            <span className="grow"><strong>{t.topic ?? "(no topic)"}</strong> <span className="badge">{t.kind}</span></span>
            <button className="primary" data-testid="thread-open" onClick={() => openChat(t.topic ?? "Chat", t.threadId)}>Open</button>
          </li>
        ))}
      </ul>
    </div>
  );
}
