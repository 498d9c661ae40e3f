// The stage: a call (CallComposite) or a chat (ChatComposite) over the tabs. It asks the adapter
// factory for an adapter with exactly the locator the API gave, then renders the composite.
import { lazy, Suspense, useEffect, useState } from "react";
import { adapterFactory, CallRequest, ChatRequest } from "./adapters";
import { describe } from "./App";

const CallView = lazy(() => import("./composites").then((m) => ({ default: m.CallView })));
const ChatView = lazy(() => import("./composites").then((m) => ({ default: m.ChatView })));

export type StageRequest =
  | { kind: "call"; title: string; request: CallRequest }
  | { kind: "chat"; title: string; request: ChatRequest };

type Disposable = { dispose?: () => void | Promise<void> };

export function Stage({ request, onClose, report }: { request: StageRequest; onClose(): void; report(e: unknown): void }) {
  const [adapter, setAdapter] = useState<unknown>(undefined);
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    let made: unknown = null;
    (async () => {
      const factory = await adapterFactory();
      made =
        request.kind === "call"
          ? await factory.createCallAdapter(request.request)
          : await factory.createChatAdapter(request.request);
      if (live) setAdapter(made);
    })().catch((e) => {
      if (live) setFailure(describe(e));
      report(e);
    });
    return () => {
      live = false;
      void (made as Disposable | null)?.dispose?.();
    };
  }, [request, report]);

  return (
    <section className="stage" data-testid="stage" data-kind={request.kind}>
      <div className="stage-bar">
        <strong data-testid="stage-title">{request.title}</strong>
        <button onClick={onClose} data-testid="stage-close">Close</button>
      </div>
      <div className="stage-body">
        {failure && <p className="error">{failure}</p>}
        {!failure && adapter === undefined && <p className="muted">Connecting…</p>}
        {!failure && adapter === null && (
          <p className="muted" data-testid="stage-ready">The adapter factory took the {request.kind} (no composite to show).</p>
        )}
        {!failure && adapter != null && (
          <Suspense fallback={<p className="muted">Loading…</p>}>
            {request.kind === "call" ? <CallView adapter={adapter} /> : <ChatView adapter={adapter} />}
          </Suspense>
        )}
      </div>
    </section>
  );
}
