// A signed-in session: the typed API with the caller's app token (auth.ts), the ACS credential
// that refreshes itself through POST /api/token, and GET /api/client-config.
import { AzureCommunicationTokenCredential } from "@azure/communication-common";
import { Api, ApiError, ClientConfig, createApi, ok, Profile } from "./api/client";
import { AppAuth, SignInExpired } from "./auth";

/** GET /api/client-config, or (an older server without it) the defaults with no endpoint. */
export type Config = Omit<ClientConfig, "acsEndpoint"> & { acsEndpoint: string | null };

/** What the client assumes while the server has no GET /api/client-config (404). */
export const DEFAULT_CLIENT_CONFIG: Config = {
  acsEndpoint: null,
  tokenScopes: ["chat", "voip"],
  pstnCallerId: null,
};

export interface Session {
  auth: AppAuth;
  profile: Profile;
  config: Config;
  /** True when the server answered 404 for client-config and the defaults are in use. */
  configDefaulted: boolean;
  /** Embedded mode: the server's ACS endpoint is local (no ACS media or chat service). */
  offline: boolean;
  communicationUserId: string;
  credential: AzureCommunicationTokenCredential;
  /** A new credential, from a new token (after POST /api/token/revoke killed the old ones). */
  renewCredential(): Promise<void>;
  api: Api;
}

/** The longest wait on a 429's Retry-After before a token request gives up. */
const MAX_TOKEN_WAIT_S = 30;
/** The longest wait for the server to finish erasing a returning user's old account. */
const MAX_ERASURE_WAIT_S = 30;

/** The app token on every request; one new token and one retry after a 401; SignInExpired
 * (through `onExpired`) when no token can be had. */
function authorizedFetch(auth: AppAuth, onExpired: (error: SignInExpired) => void) {
  return async (request: Request): Promise<Response> => {
    const send = (token: string) => {
      const copy = request.clone();
      copy.headers.set("Authorization", `Bearer ${token}`);
      return fetch(copy);
    };
    try {
      let answer = await send(await auth.token());
      // Signing in again right after erasing the account: the server finishes the erasure
      // first (409 erasure_in_progress, a few seconds); wait as told and ask again.
      for (let waited = 0; answer.status === 409 && waited < MAX_ERASURE_WAIT_S; ) {
        const problem = await answer.clone().json().catch(() => null);
        if (problem?.code !== "erasure_in_progress") break;
        const seconds = Math.min(Number(answer.headers.get("Retry-After")) || 2, 5);
        await new Promise((done) => setTimeout(done, seconds * 1000));
        waited += seconds;
        answer = await send(await auth.token());
      }
      if (answer.status !== 401) return answer;
      return await send(await auth.renew());
    } catch (error) {
      if (error instanceof SignInExpired) onExpired(error);
      throw error;
    }
  };
}

export async function openSession(auth: AppAuth, onExpired: (error: SignInExpired) => void): Promise<Session> {
  const api = createApi(authorizedFetch(auth, onExpired));
  let config: Config = DEFAULT_CLIENT_CONFIG;
  let configDefaulted = false;
  try {
    config = { ...DEFAULT_CLIENT_CONFIG, ...(await ok(api.GET("/api/client-config"))) };
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    configDefaulted = true;
  }
  const fetchToken = async () => {
    const call = () => ok(api.POST("/api/token", { body: { scopes: config.tokenScopes } }));
    try {
      return await call();
    } catch (error) {
      // The token budget (429 token_rate_limited): wait as told, once, when that is short.
      if (!(error instanceof ApiError && error.status === 429 && (error.retryAfter ?? 99) <= MAX_TOKEN_WAIT_S)) throw error;
      await new Promise((done) => setTimeout(done, error.retryAfter! * 1000));
      return await call();
    }
  };
  const credentialFrom = (token: string) =>
    new AzureCommunicationTokenCredential({
      token,
      // The ACS SDKs call this whenever the token nears expiry; the server decides the scopes.
      tokenRefresher: async () => (await fetchToken()).token,
      refreshProactively: true,
    });
  const first = await fetchToken();
  const profile = await ok(api.GET("/api/me"));
  const session: Session = {
    auth,
    profile,
    config,
    configDefaulted,
    offline: !config.acsEndpoint || !config.acsEndpoint.startsWith("https://"),
    communicationUserId: first.user.communicationUserId,
    credential: credentialFrom(first.token),
    async renewCredential() {
      const next = credentialFrom((await fetchToken()).token);
      session.credential.dispose();
      session.credential = next;
    },
    api,
  };
  return session;
}
