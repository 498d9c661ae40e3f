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
import type { AdapterFactory } from "./adapters";

export const azureAdapters: AdapterFactory = {
  async createCallAdapter(request) {
    const { userId, displayName, credential, locator, targetCallees, alternateCallerId } = request;
    if (locator) {
      return createAzureCommunicationCallAdapter({ userId, displayName, credential, locator });
    }
    return createAzureCommunicationCallAdapter({
      userId,
      displayName,
      credential,
      targetCallees: targetCallees ?? [],
      alternateCallerId,
    });
  },
  async createChatAdapter(request) {
    return createAzureCommunicationChatAdapter(request);
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
