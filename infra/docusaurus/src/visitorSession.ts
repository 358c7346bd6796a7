/**
 * Anonymous visitor tokens for the docsrag ChatKit backend.
 *
 * `POST {apiUrl}/session` issues a signed token naming an anonymous visitor; every ChatKit request
 * carries it in the `x-visitor-token` header, and the backend shows each visitor only their own
 * threads. The token is kept in localStorage so a visitor finds their threads again on the next
 * page and the next visit, and renewed (same visitor, new expiry) once a day while in use.
 */

export const VISITOR_HEADER = 'x-visitor-token';

const STORAGE_KEY = 'docsrag.visitorSession';
const DAY_MS = 24 * 60 * 60 * 1000;
/** Renew a token this old, or this close to expiry, before using it. */
const RENEW_AFTER_MS = DAY_MS;
const RENEW_BEFORE_EXPIRY_MS = 7 * DAY_MS;

interface StoredSession {
  token: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** Epoch milliseconds of the last issue or renewal. */
  renewedAt: number;
}

/** The body of `POST /session`. */
interface SessionResponse {
  token: string;
  /** Epoch seconds. */
  expires_at: number;
  renewed: boolean;
}

let memorySession: StoredSession | null = null; // when localStorage is unavailable
const pending = new Map<string, Promise<string>>();

function readSession(): StoredSession | null {
  try {
    const raw = window.localStorage.getItem(STORAGE_KEY);
    if (raw === null) return memorySession;
    const value: unknown = JSON.parse(raw);
    if (isStoredSession(value)) return value;
  } catch {
    // Storage blocked (privacy mode) or a corrupt entry: fall back to memory.
  }
  return memorySession;
}

function writeSession(session: StoredSession | null): void {
  memorySession = session;
  try {
    if (session === null) window.localStorage.removeItem(STORAGE_KEY);
    else window.localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  } catch {
    // Kept in memory only.
  }
}

function isStoredSession(value: unknown): value is StoredSession {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record.token === 'string' &&
    typeof record.expiresAt === 'number' &&
    typeof record.renewedAt === 'number'
  );
}

function isSessionResponse(value: unknown): value is SessionResponse {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return typeof record.token === 'string' && typeof record.expires_at === 'number';
}

function needsRenewal(session: StoredSession, now: number): boolean {
  return (
    now - session.renewedAt > RENEW_AFTER_MS || session.expiresAt - now < RENEW_BEFORE_EXPIRY_MS
  );
}

async function requestSession(apiUrl: string, current: string | null): Promise<string> {
  const headers: Record<string, string> = {};
  if (current !== null) headers[VISITOR_HEADER] = current;
  const response = await fetch(`${apiUrl}/session`, {method: 'POST', headers});
  if (!response.ok) {
    throw new Error(`docsrag: POST /session answered HTTP ${response.status}`);
  }
  const body: unknown = await response.json();
  if (!isSessionResponse(body)) {
    throw new Error('docsrag: POST /session returned an unexpected body');
  }
  writeSession({token: body.token, expiresAt: body.expires_at * 1000, renewedAt: Date.now()});
  return body.token;
}

/**
 * A valid visitor token: the stored one, renewed when due, or a new visitor's.
 *
 * With `fresh`, the stored token is dropped first (the backend refused it). Concurrent callers
 * share one `/session` request.
 */
export function getVisitorToken(apiUrl: string, {fresh = false} = {}): Promise<string> {
  if (fresh) writeSession(null);
  const session = readSession();
  const now = Date.now();
  if (session !== null && session.expiresAt > now && !needsRenewal(session, now)) {
    return Promise.resolve(session.token);
  }
  const inFlight = pending.get(apiUrl);
  if (inFlight !== undefined) return inFlight;
  // An expired token is not sent: the backend would start a new visitor anyway.
  const current = session !== null && session.expiresAt > now ? session.token : null;
  const request = requestSession(apiUrl, current).catch((error: unknown) => {
    // Renewal failed but the stored token is still valid: keep using it.
    if (current !== null) return current;
    throw error;
  });
  pending.set(apiUrl, request);
  void request.finally(() => pending.delete(apiUrl)).catch(() => undefined);
  return request;
}

function withVisitorHeader(input: RequestInfo | URL, init: RequestInit | undefined, token: string) {
  const headers = new Headers(input instanceof Request ? input.headers : undefined);
  new Headers(init?.headers).forEach((value, name) => headers.set(name, value));
  headers.set(VISITOR_HEADER, token);
  return {...init, headers};
}

/**
 * The `fetch` to give ChatKit (`api.fetch`): adds the visitor token to every request and, when
 * the backend refuses the token (401: expired, or signed with a retired key), gets a new one and
 * retries once.
 */
export function createVisitorFetch(apiUrl: string): typeof fetch {
  return async (input, init) => {
    const token = await getVisitorToken(apiUrl);
    const response = await fetch(input, withVisitorHeader(input, init, token));
    if (response.status !== 401) return response;
    const fresh = await getVisitorToken(apiUrl, {fresh: true});
    return fetch(input, withVisitorHeader(input, init, fresh));
  };
}
