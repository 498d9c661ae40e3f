// Chats: the caller's threads from GET /api/threads, each opened in the ChatComposite with the
// ACS endpoint from GET /api/client-config.
import type { Page, Thread } from "../api";
import type { TabProps } from "../App";
import { useLoad } from "./useList";

export function ChatsTab({ session, report, openChat }: TabProps) {
  const [threads, reload] = useLoad(() => session.api<Page<Thread>>("GET", "/api/threads").then((p) => p.items), report);
  const endpoint = session.config.acsEndpoint ?? "";
  return (
    <div className="card" data-testid="chats">
      <div className="row"><h2 style={{ flex: 1 }}>Chats</h2><button onClick={reload}>Refresh</button></div>
      {!endpoint && <p className="notice">No ACS endpoint from GET /api/client-config: chats cannot connect.</p>}
      {endpoint.startsWith("local://") && (
        <p className="notice" data-testid="chats-embedded">This server runs on its embedded adapters ({endpoint}): there is no ACS chat service to connect to.</p>
      )}
      {threads === null && <p className="muted">Loading…</p>}
      {threads?.length === 0 && <p className="muted">No chats yet: a club, a meeting or a friend's Chat button starts one.</p>}
      <ul className="list">
        {threads?.map((t) => (
          <li key={t.threadId ?? `${t.kind}-${t.meetingId ?? t.clubId ?? t.userId}`} data-testid={`thread-${t.threadId ?? t.meetingId}`}>
            <span className="grow"><strong>{t.topic}</strong> <span className="badge">{t.kind}</span></span>
            <button className="primary" disabled={!t.threadId} data-testid={`thread-open-${t.threadId}`} onClick={() => t.threadId && openChat(t.topic, t.threadId)}>
              {t.threadId ? "Open" : "Not started"}
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}
