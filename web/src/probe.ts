// `window.switchboard.probeCallAgent(token)`: build a CallAgent from a token with the real Calling
// SDK and report how it went (the SDK checks the token before it sends anything).
import { AzureCommunicationTokenCredential } from "@azure/communication-common";

declare global {
  interface Window {
    switchboard?: { probeCallAgent(token: string): Promise<unknown> };
  }
}

window.switchboard = {
  async probeCallAgent(token: string) {
    const { probeCallAgent } = await import("./composites");
    return probeCallAgent(new AzureCommunicationTokenCredential(token), "probe");
  },
};
