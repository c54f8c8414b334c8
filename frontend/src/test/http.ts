// Test doubles at the network boundary: real Response objects, as fetch would return.
import { vi, type Mock } from 'vitest';

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'x-request-id': 'req-test', ...headers },
  });
}

export type Route = (url: string, init: RequestInit) => Response | Promise<Response>;

/**
 * Stubs window.fetch with a handler keyed by "METHOD /path" (query string ignored).
 * Unknown requests fail the test loudly instead of hanging.
 */
export function stubFetch(routes: Record<string, Route>): Mock<typeof fetch> {
  const mock = vi.fn<typeof fetch>(async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const path = new URL(url, 'http://localhost').pathname;
    const key = `${init.method ?? 'GET'} ${path}`;
    const route = routes[key];
    if (!route) throw new Error(`unexpected request: ${key}`);
    return route(url, init);
  });
  vi.stubGlobal('fetch', mock);
  return mock;
}

export function requestHeaders(mock: Mock<typeof fetch>, call: number): Record<string, string> {
  return (mock.mock.calls[call]?.[1]?.headers ?? {}) as Record<string, string>;
}

export const sampleToken = (access: string, expiresIn = 900) => ({
  access_token: access,
  token_type: 'bearer' as const,
  expires_in: expiresIn,
  refresh_token: `refresh-${access}`,
});
