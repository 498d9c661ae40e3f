// The Switchboard API over fetch: the app token as a bearer, problem+json turned into ApiError.
// Every call the client makes goes through `request`, so the API base URL is set in one place.

declare const process: { env: { SWITCHBOARD_API_BASE: string } };

/** Where the API lives: the page's own origin unless the build baked in another one. */
export const API_BASE: string = process.env.SWITCHBOARD_API_BASE.replace(/\/$/, "");

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body: Record<string, unknown>,
  ) {
    super(message);
  }
}

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export async function request<T>(
  method: Method,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<T> {
  const headers: Record<string, string> = {};
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`${API_BASE}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  const data = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!response.ok) {
    const detail = String(data.detail ?? data.title ?? response.statusText);
    throw new ApiError(response.status, String(data.code ?? "error"), detail, data);
  }
  return data as T;
}

// -- wire shapes (docs/architecture.md#http-api) ---------------------------------------

export interface TokenResponse {
  token: string;
  expiresOn: string;
  user: { communicationUserId: string };
  scopes: string[];
}
export interface Profile {
  userId: string;
  displayName: string;
  communicationUserId: string | null;
  phoneNumber: string | null;
  phoneVerified: boolean;
}
export interface ClientConfig {
  acsEndpoint: string | null;
  tokenScopes: string[];
  pstnCallerId: string | null;
}
export interface Page<T> {
  items: T[];
  continuation?: string | null;
}
export interface Friend {
  userId: string;
  displayName: string;
  communicationUserId: string | null;
  status: "accepted" | "incoming" | "outgoing" | "blocked";
  since?: string;
}
export interface CallInfo {
  communicationUserId: string;
  pstn: { from: string; to: string } | null;
}
export interface Invite {
  code: string;
  expiresAt: string;
}
export interface ActiveCall {
  groupCallId: string;
  startedBy: string;
  startedAt: string;
}
export interface Club {
  clubId: string;
  name: string;
  ownerId: string;
  visibility: "open" | "invite";
  memberCount: number;
  activeCall?: ActiveCall | null;
  chatThreadId?: string | null;
}
export interface Member {
  userId: string;
  displayName: string | null;
  communicationUserId: string | null;
  role: string;
}
export interface Meeting {
  meetingId: string;
  subject: string;
  start: string;
  end: string;
  joinUrl: string | null;
  threadId: string | null;
  joinMeetingId: string | null;
  passcode: string | null;
  organizerId: string;
  provider: string;
}
export interface Thread {
  /** Null for a meeting whose chat thread is not known yet. */
  threadId: string | null;
  kind: "club" | "direct" | "meeting";
  topic: string;
  clubId: string | null;
  meetingId: string | null;
  userId: string | null;
}
