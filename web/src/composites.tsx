// The ACS UI Library, in its own chunk: the Azure adapter factory, the call and chat composites,
// and the Calling SDK probe the tests use to show that a token is accepted.
import { CallClient } from "@azure/communication-calling";
import type { CommunicationTokenCredential } from "@azure/communication-common";
import {
  CallAdapter,
  CallComposite,
  ChatAdapter,
  ChatComposite,
  createAzureCommunicationCallAdapter,
  createAzureCommunicationChatAdapter,
} from "@azure/communication-react";
import type { AdapterFactory, CallRequest } from "./adapters";

/** Reports to the request how the call ended: the remote participants the client last saw
 * (the Calling SDK's state) and whether it ever connected; once, on hang-up or on dispose. */
function watchCall(adapter: CallAdapter, request: CallRequest): CallAdapter {
  let remote = 0;
  let connected = false;
  let done = false;
  adapter.onStateChange((state) => {
    if (!state.call) return;
    remote = Object.keys(state.call.remoteParticipants ?? {}).length;
    if (state.call.state === "Connected") connected = true;
  });
  const end = () => {
    if (done) return;
    done = true;
    request.onEnded?.({ remoteParticipants: remote, connected });
  };
  adapter.on("callEnded", end);
  adapter.on("error", (error) => request.onError?.(error));
  const dispose = adapter.dispose.bind(adapter);
  adapter.dispose = () => {
    end();
    dispose();
  };
  return adapter;
}

export const azureAdapters: AdapterFactory = {
  async createCallAdapter(request) {
    const { userId, displayName, credential, locator, targetCallees, alternateCallerId } = request;
    if (locator) {
      return watchCall(await createAzureCommunicationCallAdapter({ userId, displayName, credential, locator }), request);
    }
    const adapter = await createAzureCommunicationCallAdapter({
      userId,
      displayName,
      credential,
      targetCallees: targetCallees ?? [],
      alternateCallerId,
    });
    return watchCall(adapter, request);
  },
  async createChatAdapter(request) {
    const { endpoint, userId, displayName, credential, threadId, onError } = request;
    const adapter = await createAzureCommunicationChatAdapter({ endpoint, userId, displayName, credential, threadId });
    if (onError) adapter.on("error", onError);
    return adapter;
  },
};

export function CallView({ adapter }: { adapter: unknown }) {
  return <CallComposite adapter={adapter as CallAdapter} />;
}

export function ChatView({ adapter }: { adapter: unknown }) {
  return <ChatComposite adapter={adapter as ChatAdapter} />;
}

export interface ProbeResult {
  ok: boolean;
  code?: number;
  subCode?: number;
  message?: string;
}

/** Create a CallAgent with the credential, as the call adapter does first, and say how it went. */
export async function probeCallAgent(
  credential: CommunicationTokenCredential,
  displayName: string,
): Promise<ProbeResult> {
  const client = new CallClient();
  try {
    const agent = await client.createCallAgent(credential, { displayName });
    await agent.dispose();
    return { ok: true };
  } catch (error) {
    const e = error as { code?: number; subCode?: number; message?: string };
    return { ok: false, code: e.code, subCode: e.subCode, message: String(e.message ?? error) };
  }
}
