import { errorFromResponse, unreachableError } from './errors';
import { session } from './session';

export type QueryValue = string | number | boolean | null | undefined;

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Sent as JSON. */
  body?: unknown;
  /** Empty values are left out, so optional filters can be passed as they are. */
  query?: Record<string, QueryValue>;
  /** False for calls that must not carry the bearer token (signing in). */
  authenticated?: boolean;
  signal?: AbortSignal;
}

/**
 * Calls the Nexa API on this origin and returns the parsed JSON (undefined for 204).
 * Failures are thrown as ApiError. A 401 on a call that carried a token triggers
 * one refresh and one retry, so an access token that expired under us is invisible.
 */
export async function apiRequest<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const url = withQuery(path, options.query);
  const token = options.authenticated === false ? null : session.token;
  let response = await send(url, options, token);

  if (response.status === 401 && token !== null) {
    // Someone else may have refreshed while this call was out; then just use that token.
    const renewed = session.token !== token || (await session.refresh().catch(() => false));
    if (renewed && session.token !== null) response = await send(url, options, session.token);
  }

  if (!response.ok) throw await errorFromResponse(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

async function send(url: string, options: RequestOptions, token: string | null): Promise<Response> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  try {
    // `window.fetch` is read at call time: telemetry replaces it with a version
    // that adds the `traceparent` header, and a captured reference would bypass that.
    return await window.fetch(url, {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: 'same-origin',
      signal: options.signal,
    });
  } catch (cause) {
    if (cause instanceof DOMException && cause.name === 'AbortError') throw cause;
    throw unreachableError(cause);
  }
}

export function withQuery(path: string, query: Record<string, QueryValue> | undefined): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}
