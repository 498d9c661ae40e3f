// The seam between the client and the ACS UI Library's composite adapters. The default factory
// (composites.tsx, loaded on first use) builds Azure adapters; a page may set
// `window.switchboardAdapters` before the client loads to get every locator handed over
// instead (the browser tests record them that way).
import type { CommunicationTokenCredential } from "@azure/communication-common";

/** A group call, a Teams meeting by link, or by meeting id and passcode (CallAdapterLocator). */
export type CallLocator =
  | { groupId: string }
  | { meetingLink: string }
  | { meetingId: string; passcode?: string };

/** A 1:1 call: an ACS user, or a phone number dialled from the app's caller id. */
export type Callee = { communicationUserId: string } | { phoneNumber: string };

export interface CallRequest {
  userId: { communicationUserId: string };
  displayName: string;
  credential: CommunicationTokenCredential;
  locator?: CallLocator;
  targetCallees?: Callee[];
  alternateCallerId?: string;
}

export interface ChatRequest {
  endpoint: string;
  userId: { communicationUserId: string };
  displayName: string;
  credential: CommunicationTokenCredential;
  threadId: string;
}

export interface AdapterFactory {
  /** A CallAdapter for the CallComposite; a fake may resolve to null (nothing is rendered). */
  createCallAdapter(request: CallRequest): Promise<unknown>;
  /** A ChatAdapter for the ChatComposite; a fake may resolve to null. */
  createChatAdapter(request: ChatRequest): Promise<unknown>;
}

declare global {
  interface Window {
    switchboardAdapters?: AdapterFactory;
  }
}

export async function adapterFactory(): Promise<AdapterFactory> {
  if (window.switchboardAdapters) return window.switchboardAdapters;
  return (await import("./composites")).azureAdapters;
}
