// Who signs the caller in, and the app token for each API call.
//
// - Entra ID (production): when the client is built with SWITCHBOARD_ENTRA_CLIENT_ID (and
//   SWITCHBOARD_API_SCOPE, optionally SWITCHBOARD_ENTRA_AUTHORITY), MSAL (@azure/msal-browser,
//   loaded in its own chunk) signs in by redirect and acquireTokenSilent gives each call a fresh
//   token. There is no dev sign-in in such a build.
// - Dev sign-in (AUTH_MODE=dev servers only): POST /api/dev/login with a user id. The app token
//   lives an hour; the client signs the same user in again before it expires, or after a 401.
//
// When a token can no longer be had, `AppAuth.token` throws SignInExpired and the shell returns
// to sign-in with its message (never a permanent "Loading…").
import { createApi, ok } from "./api/client";

declare const process: {
  env: { SWITCHBOARD_ENTRA_CLIENT_ID: string; SWITCHBOARD_ENTRA_AUTHORITY: string; SWITCHBOARD_API_SCOPE: string };
};

/** The Entra app configuration baked in at build time, or null for a dev-sign-in build. */
export const ENTRA = process.env.SWITCHBOARD_ENTRA_CLIENT_ID
  ? {
      clientId: process.env.SWITCHBOARD_ENTRA_CLIENT_ID,
      authority: process.env.SWITCHBOARD_ENTRA_AUTHORITY || "https://login.microsoftonline.com/organizations",
      scope: process.env.SWITCHBOARD_API_SCOPE,
    }
  : null;

export class SignInExpired extends Error {}

export interface AppAuth {
  kind: "dev" | "entra";
  /** A valid app token (renewed when it is about to expire). */
  token(): Promise<string>;
  /** A new token after the API refused the last one; throws SignInExpired when none can be had. */
  renew(): Promise<string>;
  signOut(): Promise<void>;
}

// ---- dev sign-in ----------------------------------------------------------------------------

const DEV_KEY = "switchboard.devSession";
/** Sign in again this long before the token's expiry. */
const RENEW_BEFORE_MS = 5 * 60 * 1000;

interface DevSession {
  userId: string;
  displayName: string;
  token: string;
  expiresAt: number;
}

const publicApi = createApi();

async function devLogin(userId: string, displayName: string): Promise<DevSession> {
  const answer = await ok(
    publicApi.POST("/api/dev/login", { body: { userId, ...(displayName ? { displayName } : {}) } }),
  );
  const session = { userId, displayName, token: answer.accessToken, expiresAt: Date.now() + answer.expiresIn * 1000 };
  sessionStorage.setItem(DEV_KEY, JSON.stringify(session));
  return session;
}

function devAuth(initial: DevSession): AppAuth {
  let current = initial;
  let pending: Promise<DevSession> | null = null;
  const again = () => {
    // One sign-in at a time, whatever the number of calls waiting for it.
    pending ??= devLogin(current.userId, current.displayName)
      .catch(() => {
        throw new SignInExpired("Your dev sign-in expired and could not be renewed: sign in again.");
      })
      .finally(() => (pending = null));
    return pending;
  };
  return {
    kind: "dev",
    async token() {
      if (current.expiresAt - Date.now() < RENEW_BEFORE_MS) current = await again();
      return current.token;
    },
    async renew() {
      current = await again();
      return current.token;
    },
    async signOut() {
      sessionStorage.removeItem(DEV_KEY);
    },
  };
}

/** Dev sign-in (AUTH_MODE=dev): any user id, no password. */
export async function devSignIn(userId: string, displayName: string): Promise<AppAuth> {
  return devAuth(await devLogin(userId, displayName));
}

/** The dev session of this tab (sessionStorage), if one was signed in. */
export function storedDevAuth(): AppAuth | null {
  const text = sessionStorage.getItem(DEV_KEY);
  if (!text) return null;
  try {
    const session = JSON.parse(text) as DevSession;
    return session.userId && session.token ? devAuth(session) : null;
  } catch {
    return null;
  }
}

/** What the server says of itself (GET /api/health): its auth mode, "dev" for dev sign-in. */
export async function serverAuthMode(): Promise<string | null> {
  try {
    return (await ok(publicApi.GET("/api/health"))).auth ?? null;
  } catch {
    return null;
  }
}

// ---- Entra ID (MSAL) ------------------------------------------------------------------------

type Msal = typeof import("@azure/msal-browser");
let msal: Promise<{ lib: Msal; app: import("@azure/msal-browser").IPublicClientApplication }> | null = null;

function entraApp() {
  if (!ENTRA) throw new Error("This client was built without an Entra app configuration.");
  const config = ENTRA;
  msal ??= (async () => {
    const lib = await import("@azure/msal-browser");
    const app = await lib.createStandardPublicClientApplication({
      auth: { clientId: config.clientId, authority: config.authority, redirectUri: `${location.origin}/` },
      cache: { cacheLocation: "sessionStorage" },
    });
    return { lib, app };
  })();
  return msal;
}

/** After an Entra redirect (or with a cached account): the signed-in AppAuth, else null. */
export async function entraAuth(): Promise<AppAuth | null> {
  const { lib, app } = await entraApp();
  const result = await app.handleRedirectPromise();
  const account = result?.account ?? app.getActiveAccount() ?? app.getAllAccounts()[0] ?? null;
  if (!account) return null;
  app.setActiveAccount(account);
  const scopes = [ENTRA!.scope];
  const acquire = async (forceRefresh: boolean) => {
    try {
      return (await app.acquireTokenSilent({ scopes, account, forceRefresh })).accessToken;
    } catch (error) {
      if (error instanceof lib.InteractionRequiredAuthError) {
        throw new SignInExpired("Your Microsoft sign-in has expired: sign in again.");
      }
      throw error;
    }
  };
  return {
    kind: "entra",
    token: () => acquire(false),
    renew: () => acquire(true),
    async signOut() {
      await app.clearCache({ account });
    },
  };
}

/** Off to the Entra sign-in page; the app comes back to `/` and `entraAuth` picks it up. */
export async function entraSignIn(): Promise<void> {
  const { app } = await entraApp();
  await app.loginRedirect({ scopes: [ENTRA!.scope] });
}
