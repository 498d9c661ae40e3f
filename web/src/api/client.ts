// The Switchboard API, typed from its OpenAPI document: `schema.d.ts` is generated from the
// committed snapshot `web/openapi.json` (`make web-api` refreshes both from the server's routes;
// a test fails when the snapshot and the server's document differ). openapi-fetch turns each
// call into a typed request; `ok` unwraps the answer or throws an ApiError from problem+json.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./schema";

declare const process: { env: { SWITCHBOARD_API_BASE: string } };

/** Where the API lives: the page's own origin unless the build baked in another one. */
export const API_BASE: string = process.env.SWITCHBOARD_API_BASE.replace(/\/$/, "");

export type Schemas = components["schemas"];
export type Profile = Schemas["Profile"];
export type ClientConfig = Schemas["ClientConfig"];
export type Friend = Schemas["Friend"];
export type InviteCode = Schemas["InviteCode"];
export type Club = Schemas["Club"];
export type Member = Schemas["Member"] & { status?: "invited" | "member" | null };
export type Meeting = Schemas["Meeting"];
export type Thread = Schemas["ChatThread"];
/** A club call: a group call id, or (CLUB_CALLS=rooms, docs/club-calls-in-rooms.md) an ACS room id. */
export type ActiveCall = Schemas["ActiveCall"];
/** A pending club invitation (docs/club-invitations.md: GET /api/me/club-invitations). */
export type ClubInvitation = Schemas["ClubInvitation"];

export type Paths = paths;
export type Api = Client<Paths>;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: Record<string, unknown>,
    /** Seconds from Retry-After (429, 503), when the server sent it. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

/** An API client; `fetcher` adds the caller's app token (session.ts), absent for public routes. */
export function createApi(fetcher?: (request: Request) => Promise<Response>): Api {
  return createClient<Paths>({ baseUrl: API_BASE, ...(fetcher ? { fetch: fetcher } : {}) });
}

/** The success body of an openapi-fetch call, or an ApiError built from its problem+json. */
export async function ok<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  const body = (error && typeof error === "object" ? error : {}) as Record<string, unknown>;
  const detail = String(body.detail ?? body.title ?? response.statusText ?? "error");
  const retry = Number(response.headers.get("Retry-After"));
  throw new ApiError(
    response.status,
    String(body.code ?? "error"),
    detail,
    body,
    Number.isFinite(retry) && retry > 0 ? retry : null,
  );
}

/** What a person reads for an error: a sentence, never an SDK's stack or a raw object. */
export function describe(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.code === "token_rate_limited" || (error.status === 429 && error.retryAfter)) {
      return `Too many token requests for now: try again in ${error.retryAfter ?? 60} s (429 ${error.code}).`;
    }
    if (error.status === 503) {
      return `A service the server depends on is unavailable; try again in ${error.retryAfter ?? 30} s (503 ${error.code}).`;
    }
    return `${error.message} (${error.status} ${error.code})`;
  }
  // fetch's own failure (no answer at all) is a TypeError; say it as such, not its text.
  if (error instanceof TypeError && /fetch|network|load failed/i.test(error.message)) {
    return "The server did not answer: check your connection and try again.";
  }
  return error instanceof Error ? error.message : String(error);
}
