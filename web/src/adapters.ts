// The seam between the client and the ACS UI Library's composite adapters. The default factory
// (composites.tsx, loaded on first use) builds Azure adapters; a page may set
// `window.switchboardAdapters` before the client loads to get every locator handed over
// instead (the browser tests record them that way).
import type { CommunicationTokenCredential } from "@azure/communication-common";

/** A group call, an ACS room, a Teams meeting by link, or by meeting id and passcode
 * (the UI Library's CallAdapterLocator). */
export type CallLocator =
  | { groupId: string }
  | { roomId: string }
  | { meetingLink: string }
  | { meetingId: string; passcode?: string };

/** A 1:1 call: an ACS user, or a phone number dialled from the app's caller id. */
export type Callee = { communicationUserId: string } | { phoneNumber: string };

/** How a call ended for this client: whom it left behind, and whether it ever connected. */
export interface CallEnd {
  remoteParticipants: number;
  connected: boolean;
}

export interface CallRequest {
  userId: { communicationUserId: string };
  displayName: string;
  credential: CommunicationTokenCredential;
  locator?: CallLocator;
  targetCallees?: Callee[];
  alternateCallerId?: string;
  /** Called once when the client leaves the call (hang up, the call ends, or the stage closes). */
  onEnded?(end: CallEnd): void;
  /** A failure the composite reports (a sentence is shown instead of the SDK's error). */
  onError?(error: unknown): void;
}

export interface ChatRequest {
  endpoint: string;
  userId: { communicationUserId: string };
  displayName: string;
  credential: CommunicationTokenCredential;
  threadId: string;
  onError?(error: unknown): void;
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
