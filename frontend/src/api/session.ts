import { ApiError, errorFromResponse, unreachableError } from './errors';
import type { TokenResponse } from './types';

const REFRESH_PATH = '/auth/refresh';
/** Shared by every tab of this origin, so two tabs never rotate the same cookie at once. */
const REFRESH_LOCK = 'nexa-token-refresh';
/** After a failed timed refresh (network, 503), try again this much later. */
const RETRY_AFTER_FAILURE_MS = 10_000;

type Listener = () => void;

/**
 * The signed-in state of this tab: the access token (in memory only, never in
 * storage) and the refresh that keeps it alive.
 *
 * Refresh tokens rotate and the server revokes the whole session when a rotated
 * token is presented again, so at most one refresh may be in flight: callers share
 * the same promise, and tabs take a Web Lock when the browser has them.
 */
export class Session {
  private accessToken: string | null = null;
  private expiresAt: number | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight: Promise<boolean> | null = null;
  /** Bumped by clear(): a refresh that started before a sign-out must not sign back in. */
  private generation = 0;
  private readonly listeners = new Set<Listener>();

  get token(): string | null {
    return this.accessToken;
  }

  /** Stores freshly issued tokens and plans the next refresh shortly before expiry. */
  accept(tokens: TokenResponse, now: number = Date.now()): void {
    this.accessToken = tokens.access_token;
    const lifetimeMs = Math.max(0, tokens.expires_in) * 1000;
    this.expiresAt = now + lifetimeMs;
    this.scheduleRefresh(refreshDelay(lifetimeMs));
    this.notify();
  }

  /** Forgets the token (sign-out, or the server ended the session). */
  clear(): void {
    this.generation += 1;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.expiresAt = null;
    if (this.accessToken !== null) {
      this.accessToken = null;
      this.notify();
    }
  }

  /**
   * Rotates the refresh cookie for a new access token.
   * Resolves true with a new token stored, false when the server says the session
   * is over (the token is then cleared); rejects with ApiError when it could not
   * tell (network failure, 503) and leaves the current token alone.
   */
  refresh(): Promise<boolean> {
    this.inFlight ??= this.rotate().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async rotate(): Promise<boolean> {
    const generation = this.generation;
    const response = await withRefreshLock(postRefresh);
    if (generation !== this.generation) return false;
    if (response.ok) {
      this.accept((await response.json()) as TokenResponse);
      return true;
    }
    if (response.status === 401) {
      this.clear();
      return false;
    }
    throw await errorFromResponse(response);
  }

  private scheduleRefresh(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.refresh().catch((error: unknown) => {
        // A transient failure should not sign the person out while the token still works.
        const stillValid = this.expiresAt !== null && Date.now() < this.expiresAt;
        if (error instanceof ApiError && stillValid) this.scheduleRefresh(RETRY_AFTER_FAILURE_MS);
      });
    }, delayMs);
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

/**
 * Refresh a minute before expiry, or at 80% of the lifetime for short-lived tokens,
 * so a slow network round trip never lands after the token died.
 */
export function refreshDelay(lifetimeMs: number): number {
  const lead = Math.min(60_000, lifetimeMs * 0.2);
  return Math.max(1_000, lifetimeMs - lead);
}

async function postRefresh(): Promise<Response> {
  try {
    // Empty body: the HttpOnly cookie (Path=/auth) carries the refresh token.
    // `window.fetch` is looked up now so the telemetry patch (traceparent) applies.
    return await window.fetch(REFRESH_PATH, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
  } catch (cause) {
    throw unreachableError(cause);
  }
}

async function withRefreshLock(task: () => Promise<Response>): Promise<Response> {
  const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
  if (!locks) return task();
  return await locks.request(REFRESH_LOCK, task);
}

/** The one session of this tab. */
export const session = new Session();
