// Chats: the caller's threads from GET /api/threads, each opened in the ChatComposite with the
// ACS endpoint from GET /api/client-config (in embedded mode the stage says why it cannot).
import { ok } from "../api/client";
import type { TabProps } from "../App";
import { useLoad } from "./useList";

export function ChatsTab({ session, report, openChat }: TabProps) {
  const [threads, reload] = useLoad(() => ok(session.api.GET("/api/threads")).then((p) => p.items), report);
  const endpoint = session.config.acsEndpoint ?? "";
  return (
    <div className="card" data-testid="chats">
      <div className="row between"><h2>Chats</h2><button onClick={reload}>Refresh</button></div>
      {!endpoint && <p className="notice">No ACS endpoint from GET /api/client-config: chats cannot connect.</p>}
      {endpoint && session.offline && (
        <p className="notice" data-testid="chats-embedded">
          Embedded mode ({endpoint}): the threads below are real and listed by Switchboard, but reading and sending
          messages needs an ACS resource (hybrid mode, docs/web-client.md).
        </p>
      )}
      {threads === null && <p className="muted">Loading…</p>}
      {threads?.length === 0 && <p className="muted">No chats yet: a club, a meeting or a friend's Chat button starts one.</p>}
      <ul className="list">
        {threads?.map((t) => (
          <li key={t.threadId ?? `${t.kind}-${t.meetingId ?? t.clubId ?? t.userId}`} data-testid={`thread-${t.threadId ?? t.meetingId}`}>
            <span className="grow"><strong>{t.topic}</strong> <span className="badge">{t.kind}</span></span>
            <button className="primary" disabled={!t.threadId} data-testid={`thread-open-${t.threadId}`}
              onClick={() => t.threadId && openChat(t.topic, t.threadId, `The ${t.kind} thread "${t.topic}" exists (${t.threadId}).`)}>
              {t.threadId ? "Open" : "Not started"}
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}
