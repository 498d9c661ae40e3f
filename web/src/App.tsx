// The client's shell: sign-in, then one tab per capability; calls and chats open on a stage
// over the tabs. Every list and action is one call to the Switchboard API (docs/architecture.md#http-api).
import { useCallback, useEffect, useState } from "react";
import { ApiError } from "./api";
import type { Callee, CallLocator } from "./adapters";
import { devSignIn, openSession, Session, signOut, storedAppToken } from "./session";
import { Stage, StageRequest } from "./Stage";
import { ProfileTab } from "./views/Profile";
import { FriendsTab } from "./views/Friends";
import { ClubsTab } from "./views/Clubs";
import { MeetingsTab } from "./views/Meetings";
import { ChatsTab } from "./views/Chats";
import "./styles.css";

type Tab = "profile" | "friends" | "clubs" | "meetings" | "chats";
const TABS: [Tab, string][] = [
  ["profile", "Profile"],
  ["friends", "Friends"],
  ["clubs", "Clubs"],
  ["meetings", "Meetings today"],
  ["chats", "Chats"],
];

/** What every tab gets: the session, a way to open a call or chat, and to report an error. */
export interface TabProps {
  session: Session;
  openCall(title: string, target: { locator?: CallLocator; targetCallees?: Callee[]; alternateCallerId?: string }): void;
  openChat(title: string, threadId: string): void;
  report(error: unknown): void;
}

export function describe(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.status} ${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [tab, setTab] = useState<Tab>("profile");
  const [error, setError] = useState<string | null>(null);
  const [stage, setStage] = useState<StageRequest | null>(null);
  const report = useCallback((e: unknown) => setError(describe(e)), []);

  const start = useCallback(async (token: string) => {
    try {
      setSession(await openSession(async () => token));
      setError(null);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) signOut();
      report(e);
    }
  }, [report]);

  useEffect(() => {
    const token = storedAppToken();
    if (token) void start(token);
  }, [start]);

  if (!session) {
    return (
      <main className="signin">
        <h1>Switchboard</h1>
        <p className="muted">The reference client: friends, clubs, meetings and chat on Azure Communication Services.</p>
        <SignIn onSignedIn={start} report={report} />
        {error && <p className="error" role="alert" data-testid="error">{error}</p>}
      </main>
    );
  }

  const props: TabProps = {
    session,
    report,
    openCall: (title, target) =>
      setStage({
        kind: "call",
        title,
        request: {
          userId: { communicationUserId: session.communicationUserId },
          displayName: session.profile.displayName,
          credential: session.credential,
          ...target,
        },
      }),
    openChat: (title, threadId) =>
      setStage({
        kind: "chat",
        title,
        request: {
          endpoint: session.config.acsEndpoint ?? "",
          userId: { communicationUserId: session.communicationUserId },
          displayName: session.profile.displayName,
          credential: session.credential,
          threadId,
        },
      }),
  };

  return (
    <div className="app">
      <header>
        <strong>Switchboard</strong>
        <nav>
          {TABS.map(([id, label]) => (
            <button key={id} className={id === tab ? "tab active" : "tab"} data-testid={`tab-${id}`} onClick={() => setTab(id)}>
              {label}
            </button>
          ))}
        </nav>
        <span className="who" data-testid="who">{session.profile.displayName}</span>
        <button onClick={() => { signOut(); setSession(null); setStage(null); }}>Sign out</button>
      </header>
      {session.configDefaulted && (
        <p className="notice" data-testid="config-defaulted">
          This server has no GET /api/client-config yet: using the default scopes (chat, voip) and no chat endpoint.
        </p>
      )}
      {error && (
        <p className="error" role="alert" data-testid="error" onClick={() => setError(null)}>{error}</p>
      )}
      <main>
        {tab === "profile" && <ProfileTab {...props} />}
        {tab === "friends" && <FriendsTab {...props} />}
        {tab === "clubs" && <ClubsTab {...props} />}
        {tab === "meetings" && <MeetingsTab {...props} />}
        {tab === "chats" && <ChatsTab {...props} />}
      </main>
      {stage && <Stage request={stage} onClose={() => setStage(null)} report={report} />}
    </div>
  );
}

function SignIn({ onSignedIn, report }: { onSignedIn(token: string): void; report(e: unknown): void }) {
  const [userId, setUserId] = useState("");
  const [displayName, setDisplayName] = useState("");
  return (
    <form
      className="card"
      onSubmit={async (event) => {
        event.preventDefault();
        try {
          onSignedIn(await devSignIn(userId.trim(), displayName.trim()));
        } catch (e) {
          report(e);
        }
      }}
    >
      <h2>Dev sign-in</h2>
      <label>User id <input data-testid="signin-user" value={userId} onChange={(e) => setUserId(e.target.value)} required placeholder="alice" /></label>
      <label>Display name <input data-testid="signin-name" value={displayName} onChange={(e) => setDisplayName(e.target.value)} placeholder="Alice" /></label>
      <button type="submit" className="primary" data-testid="signin-submit">Sign in</button>
      <p className="muted">AUTH_MODE=dev: the server signs any user in. In production this is your identity provider (MSAL).</p>
    </form>
  );
}
