import { beforeEach, describe, expect, it, vi } from 'vitest';
import { jsonResponse, requestHeaders, sampleToken, stubFetch } from '../test/http';
import { apiRequest, withQuery } from './client';
import { ApiError } from './errors';
import { session } from './session';

beforeEach(() => session.clear());

describe('apiRequest', () => {
  it('refreshes once after a 401 and retries with the new token', async () => {
    session.accept(sampleToken('expired'));
    let itemCalls = 0;
    const fetch = stubFetch({
      'GET /users/me': () =>
        ++itemCalls === 1
          ? jsonResponse(401, { detail: 'Invalid authentication credentials' })
          : jsonResponse(200, { id: 1, username: 'admin' }),
      'POST /auth/refresh': () => jsonResponse(200, sampleToken('fresh')),
    });

    await expect(apiRequest('/users/me')).resolves.toEqual({ id: 1, username: 'admin' });

    expect(fetch.mock.calls.map(([url, init]) => `${init?.method ?? 'GET'} ${String(url)}`)).toEqual([
      'GET /users/me',
      'POST /auth/refresh',
      'GET /users/me',
    ]);
    expect(requestHeaders(fetch, 0).Authorization).toBe('Bearer expired');
    expect(requestHeaders(fetch, 2).Authorization).toBe('Bearer fresh');
  });

  it('retries only once: a second 401 is reported', async () => {
    session.accept(sampleToken('t0'));
    const fetch = stubFetch({
      'DELETE /items/3': () => jsonResponse(401, { detail: 'Not authenticated' }, { 'x-request-id': 'second' }),
      'POST /auth/refresh': () => jsonResponse(200, sampleToken('t1')),
    });

    const error = await apiRequest('/items/3', { method: 'DELETE' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(401);
    expect((error as ApiError).requestId).toBe('second');
    expect(fetch).toHaveBeenCalledTimes(3);
  });

  it('gives up without retrying when the refresh is refused, and signs out', async () => {
    session.accept(sampleToken('t0'));
    const fetch = stubFetch({
      'GET /users/me': () => jsonResponse(401, { detail: 'Not authenticated' }),
      'POST /auth/refresh': () => jsonResponse(401, { detail: 'Invalid refresh token' }),
    });

    await expect(apiRequest('/users/me')).rejects.toMatchObject({ status: 401 });
    expect(fetch).toHaveBeenCalledTimes(2);
    expect(session.token).toBeNull();
  });

  it('does not try to refresh when no token was sent', async () => {
    const fetch = stubFetch({ 'POST /items': () => jsonResponse(401, { detail: 'Not authenticated' }) });
    await expect(apiRequest('/items', { method: 'POST', body: {} })).rejects.toMatchObject({ status: 401 });
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('uses the fetch installed at call time (so instrumentation can wrap it)', async () => {
    stubFetch({ 'GET /health': () => jsonResponse(200, { first: true }) });
    await apiRequest('/health');
    const later = vi.fn<typeof fetch>(async () => jsonResponse(200, { second: true }));
    vi.stubGlobal('fetch', later);
    await expect(apiRequest('/health')).resolves.toEqual({ second: true });
    expect(later).toHaveBeenCalledTimes(1);
  });

  it('sends JSON with a content type and returns undefined for 204', async () => {
    session.accept(sampleToken('t'));
    const fetch = stubFetch({ 'PATCH /items/1': () => new Response(null, { status: 204 }) });
    await expect(apiRequest('/items/1', { method: 'PATCH', body: { is_available: false } })).resolves.toBeUndefined();
    expect(fetch.mock.calls[0]?.[1]?.body).toBe('{"is_available":false}');
    expect(requestHeaders(fetch, 0)['Content-Type']).toBe('application/json');
  });

  it('reports an unreachable server as status 0', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))));
    await expect(apiRequest('/health')).rejects.toMatchObject({ status: 0, requestId: null });
  });
});

describe('withQuery', () => {
  it('drops empty values', () => {
    expect(withQuery('/items', { skip: 0, limit: 11, owner_id: undefined })).toBe('/items?skip=0&limit=11');
    expect(withQuery('/items', {})).toBe('/items');
  });
});
