import { afterEach, describe, expect, it, vi } from 'vitest';
import { jsonResponse, sampleToken, stubFetch } from '../test/http';
import { ApiError } from './errors';
import { refreshDelay, Session } from './session';

afterEach(() => {
  vi.useRealTimers();
});

/** A fetch answer we release by hand, to hold a refresh "in flight". */
function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('Session.refresh', () => {
  it('shares one request between concurrent callers (single flight)', async () => {
    const answer = deferred<Response>();
    const fetch = stubFetch({ 'POST /auth/refresh': () => answer.promise });
    const session = new Session();

    const first = session.refresh();
    const second = session.refresh();
    answer.resolve(jsonResponse(200, sampleToken('t1')));

    await expect(Promise.all([first, second])).resolves.toEqual([true, true]);
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(session.token).toBe('t1');
  });

  it('sends an empty body with same-origin credentials (the cookie carries the token)', async () => {
    const fetch = stubFetch({ 'POST /auth/refresh': () => jsonResponse(200, sampleToken('t1')) });
    await new Session().refresh();
    const init = fetch.mock.calls[0]?.[1];
    expect(init?.body).toBeUndefined();
    expect(init?.credentials).toBe('same-origin');
  });

  it('starts a new request once the previous one settled', async () => {
    const fetch = stubFetch({ 'POST /auth/refresh': () => jsonResponse(200, sampleToken('t')) });
    const session = new Session();
    await session.refresh();
    await session.refresh();
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('clears the token and tells subscribers when the server refuses (401)', async () => {
    stubFetch({ 'POST /auth/refresh': () => jsonResponse(401, { detail: 'Invalid refresh token' }) });
    const session = new Session();
    session.accept(sampleToken('old'));
    const listener = vi.fn();
    session.subscribe(listener);

    await expect(session.refresh()).resolves.toBe(false);
    expect(session.token).toBeNull();
    expect(listener).toHaveBeenCalled();
  });

  it('keeps the token and rejects with ApiError when the server is unavailable', async () => {
    stubFetch({
      'POST /auth/refresh': () => jsonResponse(503, { detail: 'Service temporarily unavailable' }, { 'retry-after': '3' }),
    });
    const session = new Session();
    session.accept(sampleToken('still-good'));

    const failure = await session.refresh().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).retryAfter).toBe(3);
    expect(session.token).toBe('still-good');
  });

  it('does not sign back in when sign-out happened during the refresh', async () => {
    const answer = deferred<Response>();
    stubFetch({ 'POST /auth/refresh': () => answer.promise });
    const session = new Session();
    const pending = session.refresh();
    session.clear();
    answer.resolve(jsonResponse(200, sampleToken('late')));

    await expect(pending).resolves.toBe(false);
    expect(session.token).toBeNull();
  });
});

describe('timed refresh', () => {
  it('refreshes shortly before the access token expires', async () => {
    vi.useFakeTimers();
    const fetch = stubFetch({ 'POST /auth/refresh': () => jsonResponse(200, sampleToken('next', 900)) });
    const session = new Session();
    session.accept(sampleToken('first', 900));

    await vi.advanceTimersByTimeAsync(839_000);
    expect(fetch).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(session.token).toBe('next');
    session.clear();
  });

  it('stops the timer on clear()', async () => {
    vi.useFakeTimers();
    const fetch = stubFetch({ 'POST /auth/refresh': () => jsonResponse(200, sampleToken('next')) });
    const session = new Session();
    session.accept(sampleToken('first', 60));
    session.clear();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(fetch).not.toHaveBeenCalled();
  });

  it('plans a minute early for long tokens and at 80% for short ones', () => {
    expect(refreshDelay(900_000)).toBe(840_000);
    expect(refreshDelay(60_000)).toBe(48_000);
    expect(refreshDelay(0)).toBe(1_000);
  });
});
