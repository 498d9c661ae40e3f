// The stage: a call (CallComposite) or a chat (ChatComposite) over the tabs. It asks the adapter
// factory for an adapter with exactly the locator the API gave, then renders the composite.
//
// Honest offline: against an embedded server (no ACS resource: client-config's endpoint is not
// https) the stage says what Switchboard did (the registry, the thread) and what needs an ACS
// resource; a call offers only the lobby (camera and microphone check) and a chat nothing. No
// SDK error reaches the page: failures are said in a sentence (the SDK's text goes to the
// console), and a call that never connected is never shown as one that happened.
import { lazy, Suspense, useEffect, useRef, useState } from "react";
import { adapterFactory, CallEnd, CallRequest, ChatRequest } from "./adapters";

const CallView = lazy(() => import("./composites").then((m) => ({ default: m.CallView })));
const ChatView = lazy(() => import("./composites").then((m) => ({ default: m.ChatView })));

/** Where a developer learns to connect an ACS resource (docs/web-client.md, "Hybrid mode"). */
export const HYBRID_DOCS = "https://learn.microsoft.com/azure/communication-services/quickstarts/create-communication-resource";

export type StageRequest =
  | { kind: "call"; title: string; request: CallRequest; registry?: string }
  | { kind: "chat"; title: string; request: ChatRequest; registry?: string };

type Disposable = { dispose?: () => void | Promise<void> };
type Phase = "notice" | "connecting" | "ready" | "live" | "ended" | "failed";

export function Stage({ request, offline, onClose }: { request: StageRequest; offline: boolean; onClose(): void }) {
  const [phase, setPhase] = useState<Phase>(offline ? "notice" : "connecting");
  const [adapter, setAdapter] = useState<unknown>(null);
  const [end, setEnd] = useState<CallEnd | null>(null);
  // The request hears how the call ended once, whoever notices first (the SDK, or Close).
  const endReported = useRef(false);
  const reportEnd = (how: CallEnd) => {
    if (endReported.current || request.kind !== "call") return;
    endReported.current = true;
    request.request.onEnded?.(how);
  };
  // Past the offline notice: the adapter is made once and lives until the stage closes.
  const started = phase !== "notice";

  useEffect(() => {
    if (!started) return;
    let live = true;
    let made: unknown = null;
    const fail = (error: unknown) => {
      console.warn(`Switchboard: the ${request.kind} composite failed`, error);
      if (live) setPhase("failed");
    };
    (async () => {
      const factory = await adapterFactory();
      if (request.kind === "call") {
        made = await factory.createCallAdapter({
          ...request.request,
          onEnded: (how) => {
            reportEnd(how);
            if (live) {
              setEnd(how);
              setPhase("ended");
            }
          },
          onError: fail,
        });
      } else {
        made = await factory.createChatAdapter({ ...request.request, onError: fail });
      }
      if (!live) return void (made as Disposable | null)?.dispose?.();
      setAdapter(made);
      setPhase(made == null ? "ready" : "live");
    })().catch(fail);
    return () => {
      live = false;
      void (made as Disposable | null)?.dispose?.();
    };
    // The stage is keyed by its request: a new request is a new stage.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [started]);

  const endpoint = request.kind === "chat" ? request.request.endpoint : "";
  // Closed before any adapter took the call (the offline notice, a failure): the client never
  // joined it, and says so to whoever registered it (a club clears a call nobody is in).
  const close = () => {
    if (request.kind === "call" && (phase === "notice" || phase === "failed")) {
      reportEnd({ remoteParticipants: 0, connected: false });
    }
    onClose();
  };
  return (
    <section className="stage" data-testid="stage" data-kind={request.kind} data-phase={phase}>
      <div className="stage-bar">
        <strong data-testid="stage-title">{request.title}</strong>
        <button onClick={close} data-testid="stage-close">Close</button>
      </div>
      <div className="stage-body">
        {phase === "notice" && <OfflineNotice request={request} onLobby={() => setPhase("connecting")} />}
        {phase === "connecting" && <p className="muted pad">Connecting…</p>}
        {phase === "ready" && (
          <p className="muted pad" data-testid="stage-ready">The adapter factory took the {request.kind} (no composite to show).</p>
        )}
        {phase === "live" && (
          <Suspense fallback={<p className="muted pad">Loading…</p>}>
            {request.kind === "call" ? <CallView adapter={adapter} /> : <ChatView adapter={adapter} />}
          </Suspense>
        )}
        {phase === "ended" && (
          <div className="pad" data-testid="stage-ended">
            {offline || !end?.connected ? (
              <p>
                <strong>No call took place.</strong>{" "}
                {offline
                  ? "This server runs in embedded mode: it has no ACS calling service to connect to."
                  : "The call did not connect."}
              </p>
            ) : (
              <p>You left the call{end.remoteParticipants ? "" : ": you were the last one in"}.</p>
            )}
            <button className="primary" onClick={close}>Close</button>
          </div>
        )}
        {phase === "failed" && (
          <div className="pad" data-testid="stage-failed">
            <p className="error-text">
              {request.kind === "call"
                ? "The call could not connect: the ACS calling service did not answer."
                : `The chat could not open: the ACS chat service (${endpoint || "no endpoint"}) did not answer.`}
            </p>
            <p className="muted">Check your connection and try again; the browser's console has the details.</p>
            <button onClick={close}>Close</button>
          </div>
        )}
      </div>
    </section>
  );
}

function OfflineNotice({ request, onLobby }: { request: StageRequest; onLobby(): void }) {
  return (
    <div className="pad offline" data-testid="stage-offline">
      <h2>{request.kind === "call" ? "Calls need an ACS resource" : "Chat needs an ACS resource"}</h2>
      <p>
        This server runs in <strong>embedded mode</strong>: Switchboard's own part works offline, the media and
        messages of Azure Communication Services do not.
      </p>
      <h3>What worked</h3>
      <ul>
        {request.registry && <li data-testid="stage-registry">{request.registry}</li>}
        <li>Your ACS identity, and an ACS token for it from POST /api/token.</li>
        {request.kind === "call" && <li>The lobby: check your camera and microphone before a call.</li>}
      </ul>
      <h3>What needs an ACS resource</h3>
      <p>
        {request.kind === "call" ? "Placing or joining the call itself." : "Sending and reading messages."} Start
        the server with <code>ACS_CONNECTION_STRING</code> set (hybrid mode: the embedded store and dev sign-in
        with a real ACS resource; see <code>docs/web-client.md</code>) —{" "}
        <a href={HYBRID_DOCS} target="_blank" rel="noreferrer">create an ACS resource</a>.
      </p>
      {request.kind === "call" && (
        <button className="primary" data-testid="stage-lobby" onClick={onLobby}>Check camera and microphone</button>
      )}
    </div>
  );
}
