// A signed-in session: the app token (dev sign-in here; MSAL in production, see docs/production-sign-in.md), the
// ACS credential that refreshes itself through POST /api/token, and GET /api/client-config.
import { AzureCommunicationTokenCredential } from "@azure/communication-common";
import { ApiError, ClientConfig, Method, Profile, TokenResponse, request } from "./api";

/** What the client assumes while the server has no GET /api/client-config (404). */
export const DEFAULT_CLIENT_CONFIG: ClientConfig = {
  acsEndpoint: null,
  tokenScopes: ["chat", "voip"],
  pstnCallerId: null,
};

/** The caller's app token, fresh on every call: dev sign-in's, or MSAL's acquireTokenSilent. */
export type AppTokenSource = () => Promise<string>;

export interface Session {
  profile: Profile;
  config: ClientConfig;
  /** True when the server answered 404 for client-config and the defaults are in use. */
  configDefaulted: boolean;
  communicationUserId: string;
  credential: AzureCommunicationTokenCredential;
  api<T>(method: Method, path: string, body?: unknown): Promise<T>;
}

const STORAGE_KEY = "switchboard.appToken";

/** Dev sign-in (AUTH_MODE=dev): any user id, no password. */
export async function devSignIn(userId: string, displayName: string): Promise<string> {
  const answer = await request<{ accessToken: string }>("POST", "/api/dev/login", {
    body: { userId, ...(displayName ? { displayName } : {}) },
  });
  sessionStorage.setItem(STORAGE_KEY, answer.accessToken);
  return answer.accessToken;
}

export function storedAppToken(): string | null {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function signOut(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

export async function openSession(appToken: AppTokenSource): Promise<Session> {
  const api = async <T>(method: Method, path: string, body?: unknown) =>
    request<T>(method, path, { token: await appToken(), body });
  let config = DEFAULT_CLIENT_CONFIG;
  let configDefaulted = false;
  try {
    config = { ...DEFAULT_CLIENT_CONFIG, ...(await api<ClientConfig>("GET", "/api/client-config")) };
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    configDefaulted = true;
  }
  const fetchToken = () =>
    api<TokenResponse>("POST", "/api/token", { scopes: config.tokenScopes });
  const first = await fetchToken();
  const credential = new AzureCommunicationTokenCredential({
    token: first.token,
    // The ACS SDKs call this whenever the token nears expiry; the server decides the scopes.
    tokenRefresher: async () => (await fetchToken()).token,
    refreshProactively: true,
  });
  const profile = await api<Profile>("GET", "/api/me");
  return {
    profile,
    config,
    configDefaulted,
    communicationUserId: first.user.communicationUserId,
    credential,
    api,
  };
}
