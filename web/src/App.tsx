// The client's shell: sign-in (Entra ID through MSAL in a production build, dev sign-in against a
// dev server), then one tab per capability; calls and chats open on a stage over the tabs. Every
// list and action is one call to the Switchboard API (docs/architecture.md).
import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, describe } from "./api/client";
import type { CallEnd, Callee, CallLocator } from "./adapters";
import { AppAuth, devSignIn, ENTRA, entraAuth, entraSignIn, serverAuthMode, SignInExpired, storedDevAuth } from "./auth";
import { openSession, Session } from "./session";
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
  ["meetings", "Meetings"],
  ["chats", "Chats"],
];

/** A link into the client (`/?clubId=…`, `/?meetingId=…`, as SMS invitations send): kept in
 * the tab's storage so it survives sign-in (and MSAL's redirect), opened once signed in. */
export type DeepLink = { clubId: string } | { meetingId: string };
const LINK_KEY = "switchboard.deepLink";

function captureDeepLink(): void {
  const query = new URLSearchParams(location.search);
  const clubId = query.get("clubId");
  const meetingId = query.get("meetingId");
  if (clubId || meetingId) {
    sessionStorage.setItem(LINK_KEY, JSON.stringify(clubId ? { clubId } : { meetingId }));
    history.replaceState(null, "", location.pathname);
  }
}
captureDeepLink();

function takeDeepLink(): DeepLink | null {
  const text = sessionStorage.getItem(LINK_KEY);
  sessionStorage.removeItem(LINK_KEY);
  return text ? (JSON.parse(text) as DeepLink) : null;
}

export interface CallTarget {
  locator?: CallLocator;
  targetCallees?: Callee[];
  alternateCallerId?: string;
}

/** What every tab gets: the session, the stage, the banner and a confirmation dialog. */
export interface TabProps {
  session: Session;
  /** Dev sign-in: the server's dev routes (the SMS outbox) exist. */
  devMode: boolean;
  openCall(title: string, target: CallTarget, extra?: { registry?: string; onEnded?(end: CallEnd): void }): void;
  openChat(title: string, threadId: string, registry?: string): void;
  report(error: unknown): void;
  notify(message: string): void;
  /** Runs an action: clears the banner first, reports a failure, answers whether it succeeded. */
  run(work: () => Promise<unknown>): Promise<boolean>;
  confirm(question: string, yes: string): Promise<boolean>;
  /** The deep link this tab should open, if any (cleared once used). */
  link: DeepLink | null;
}

type Banner = { kind: "error" | "info"; text: string } | null;
type Boot = "booting" | "signin" | "opening";

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [boot, setBoot] = useState<Boot>("booting");
  const [tab, setTab] = useState<Tab>("profile");
  const [banner, setBanner] = useState<Banner>(null);
  // A new request is a new stage (its own adapter), even for the same call opened again.
  const [stage, setStageState] = useState<{ key: number; request: StageRequest } | null>(null);
  const stages = useRef(0);
  const setStage = (request: StageRequest | null) =>
    setStageState(request && { key: ++stages.current, request });
  const [menu, setMenu] = useState(false);
  const [link, setLink] = useState<DeepLink | null>(null);
  const [question, setQuestion] = useState<{ text: string; yes: string; answer(ok: boolean): void } | null>(null);
  const report = useCallback((e: unknown) => setBanner({ kind: "error", text: describe(e) }), []);
  const notify = useCallback((text: string) => setBanner({ kind: "info", text }), []);

  const expired = useCallback((error: SignInExpired) => {
    setSession(null);
    setStage(null);
    setBoot("signin");
    setBanner({ kind: "error", text: error.message });
  }, []);

  const start = useCallback(
    async (auth: AppAuth) => {
      setBoot("opening");
      try {
        const opened = await openSession(auth, expired);
        setBanner(null);
        setSession(opened);
        const target = takeDeepLink();
        if (target) {
          setTab("clubId" in target ? "clubs" : "meetings");
          setLink(target);
        }
      } catch (e) {
        // A sign-in the server refuses is forgotten; a server that is down (503) or a token
        // budget spent (429) is only said: signing in again later needs nothing new.
        if (e instanceof SignInExpired || (e instanceof ApiError && e.status === 401)) await auth.signOut();
        setBoot("signin");
        report(e);
      }
    },
    [expired, report],
  );

  useEffect(() => {
    (async () => {
      const auth = ENTRA ? await entraAuth() : storedDevAuth();
      if (auth) await start(auth);
      else setBoot("signin");
    })().catch((e) => {
      setBoot("signin");
      report(e);
    });
  }, [start, report]);

  const choose = (next: Tab) => {
    setTab(next);
    setBanner(null);
    setMenu(false);
  };
  const run = useCallback(
    async (work: () => Promise<unknown>) => {
      setBanner(null);
      try {
        await work();
        return true;
      } catch (e) {
        report(e);
        return false;
      }
    },
    [report],
  );
  const confirm = useCallback(
    (text: string, yes: string) => new Promise<boolean>((answer) => setQuestion({ text, yes, answer })),
    [],
  );
  const bannerView = banner && (
    <div className={banner.kind === "error" ? "banner error" : "banner info"} role={banner.kind === "error" ? "alert" : "status"} data-testid={banner.kind === "error" ? "error" : "info"}>
      <span>{banner.text}</span>
      <button className="link" aria-label="Dismiss" data-testid="banner-close" onClick={() => setBanner(null)}>×</button>
    </div>
  );

  if (!session) {
    return (
      <main className="signin">
        <h1>Switchboard</h1>
        <p className="muted">The reference client: friends, clubs, meetings and chat on Azure Communication Services.</p>
        {bannerView}
        {boot !== "booting" && (ENTRA ? <EntraSignIn report={report} /> : <DevSignIn onSignedIn={start} report={report} busy={boot === "opening"} />)}
        {boot !== "signin" && <p className="muted" data-testid="signin-wait">Signing in…</p>}
      </main>
    );
  }

  const signOut = async () => {
    await session.auth.signOut();
    setSession(null);
    setStage(null);
    setMenu(false);
    setBoot("signin");
  };
  const props: TabProps = {
    session,
    devMode: session.auth.kind === "dev",
    report,
    notify,
    run,
    confirm,
    link,
    openCall: (title, target, extra = {}) =>
      setStage({
        kind: "call",
        title,
        registry: extra.registry,
        request: {
          userId: { communicationUserId: session.communicationUserId },
          displayName: session.profile.displayName,
          credential: session.credential,
          onEnded: extra.onEnded,
          ...target,
        },
      }),
    openChat: (title, threadId, registry) =>
      setStage({
        kind: "chat",
        title,
        registry,
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
      <header className={menu ? "open" : ""}>
        <strong className="brand">Switchboard</strong>
        <button className="menu-toggle" data-testid="menu" aria-expanded={menu} onClick={() => setMenu(!menu)}>
          {menu ? "Close" : "Menu"}
        </button>
        <nav>
          {TABS.map(([id, label]) => (
            <button key={id} className={id === tab ? "tab active" : "tab"} data-testid={`tab-${id}`} onClick={() => choose(id)}>
              {label}
            </button>
          ))}
        </nav>
        <div className="account">
          <span className="who" data-testid="who">{session.profile.displayName}</span>
          <button data-testid="sign-out" onClick={signOut}>Sign out</button>
        </div>
      </header>
      {session.configDefaulted && (
        <p className="notice" data-testid="config-defaulted">
          This server has no GET /api/client-config yet: using the default scopes (chat, voip) and no chat endpoint.
        </p>
      )}
      {session.offline && !session.configDefaulted && (
        <p className="notice" data-testid="offline-mode">
          Embedded mode: friends, clubs, meetings and their registry work here; calls and chat need an ACS resource (hybrid mode, docs/web-client.md).
        </p>
      )}
      <main>
        {bannerView}
        {tab === "profile" && <ProfileTab {...props} />}
        {tab === "friends" && <FriendsTab {...props} />}
        {tab === "clubs" && <ClubsTab {...props} />}
        {tab === "meetings" && <MeetingsTab {...props} />}
        {tab === "chats" && <ChatsTab {...props} />}
      </main>
      {stage && <Stage key={stage.key} request={stage.request} offline={session.offline} onClose={() => setStage(null)} />}
      {question && (
        <Confirm
          text={question.text}
          yes={question.yes}
          onAnswer={(answer) => {
            question.answer(answer);
            setQuestion(null);
          }}
        />
      )}
    </div>
  );
}

function Confirm({ text, yes, onAnswer }: { text: string; yes: string; onAnswer(ok: boolean): void }) {
  const first = useRef<HTMLButtonElement>(null);
  useEffect(() => first.current?.focus(), []);
  return (
    <div className="dialog-backdrop">
      <div className="dialog card" role="alertdialog" aria-modal="true" data-testid="confirm">
        <p data-testid="confirm-text">{text}</p>
        <div className="row end">
          <button ref={first} data-testid="confirm-no" onClick={() => onAnswer(false)}>Cancel</button>
          <button className="danger" data-testid="confirm-yes" onClick={() => onAnswer(true)}>{yes}</button>
        </div>
      </div>
    </div>
  );
}

function EntraSignIn({ report }: { report(e: unknown): void }) {
  return (
    <div className="card">
      <h2>Sign in</h2>
      <button className="primary" data-testid="signin-entra" onClick={() => entraSignIn().catch(report)}>
        Sign in with Microsoft
      </button>
      <p className="muted">Your organization's Microsoft Entra ID account.</p>
    </div>
  );
}

function DevSignIn({ onSignedIn, report, busy }: { onSignedIn(auth: AppAuth): void; report(e: unknown): void; busy: boolean }) {
  const [userId, setUserId] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [mode, setMode] = useState<string | null | undefined>(undefined);
  useEffect(() => {
    void serverAuthMode().then(setMode);
  }, []);
  if (mode !== undefined && mode !== null && mode !== "dev") {
    return (
      <div className="card" data-testid="signin-unavailable">
        <h2>No sign-in for this server</h2>
        <p>
          This server signs callers in with <code>AUTH_MODE={mode}</code>, and this build of the client has no Entra
          app configuration. Build it with <code>SWITCHBOARD_ENTRA_CLIENT_ID</code> and <code>SWITCHBOARD_API_SCOPE</code>{" "}
          (docs/web-client.md).
        </p>
      </div>
    );
  }
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
      <button type="submit" className="primary" data-testid="signin-submit" disabled={busy}>Sign in</button>
      <p className="muted">AUTH_MODE=dev: the server signs any user in. A production build signs in with Microsoft Entra ID (MSAL).</p>
    </form>
  );
}
