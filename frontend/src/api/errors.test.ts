import { describe, expect, it } from 'vitest';
import { jsonResponse } from '../test/http';
import { errorFromResponse, humanMessage, parseRetryAfter, splitValidationIssues } from './errors';

describe('errorFromResponse', () => {
  it('turns a 422 into a map of field errors', async () => {
    const error = await errorFromResponse(
      jsonResponse(
        422,
        {
          detail: [
            { type: 'decimal_max_places', loc: ['body', 'price'], msg: 'Decimal input should have no more than 2 decimal places', input: '1.234' },
            { type: 'missing', loc: ['body', 'name'], msg: 'Field required' },
            { type: 'less_than_equal', loc: ['query', 'limit'], msg: 'Input should be less than or equal to 1000' },
          ],
        },
        { 'x-request-id': 'abc123' },
      ),
    );
    expect(error.status).toBe(422);
    expect(error.fieldErrors).toEqual({
      price: 'Decimal input should have no more than 2 decimal places',
      name: 'Field required',
      limit: 'Input should be less than or equal to 1000',
    });
    expect(error.requestId).toBe('abc123');
    expect(humanMessage(error)).toBe('Some fields need attention.');
  });

  it('keeps whole-body issues as a general message', async () => {
    const error = await errorFromResponse(
      jsonResponse(422, { detail: [{ type: 'json_invalid', loc: ['body'], msg: 'JSON decode error' }] }),
    );
    expect(error.fieldErrors).toEqual({});
    expect(error.detail).toBe('JSON decode error');
    expect(humanMessage(error)).toContain('JSON decode error');
  });

  it('reads Retry-After on a 429 and says when to retry', async () => {
    const error = await errorFromResponse(
      jsonResponse(429, { detail: 'Too many failed attempts' }, { 'retry-after': '42', 'x-request-id': 'r-429' }),
    );
    expect(error.retryAfter).toBe(42);
    expect(error.requestId).toBe('r-429');
    expect(humanMessage(error)).toBe('Too many attempts. Try again in 42 seconds.');
  });

  it('captures the request id and detail of a plain error', async () => {
    const error = await errorFromResponse(jsonResponse(403, { detail: 'Not enough permissions' }, { 'x-request-id': 'f00' }));
    expect(error.detail).toBe('Not enough permissions');
    expect(error.requestId).toBe('f00');
    expect(error.retryAfter).toBeNull();
    expect(humanMessage(error)).toBe('You are not allowed to do this: Not enough permissions.');
  });

  it('survives a body that is not JSON', async () => {
    const error = await errorFromResponse(new Response('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    expect(error.status).toBe(502);
    expect(error.detail).toBe('Bad Gateway');
    expect(error.requestId).toBeNull();
  });

  it('explains a 503 with its retry time', async () => {
    const error = await errorFromResponse(
      jsonResponse(503, { detail: 'Service temporarily unavailable' }, { 'retry-after': '5' }),
    );
    expect(humanMessage(error)).toBe('The service is temporarily unavailable. Try again in 5 seconds.');
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
  });
});

describe('splitValidationIssues', () => {
  it('keeps the first message per field and joins nested paths', () => {
    const { fieldErrors } = splitValidationIssues([
      { type: 'a', loc: ['body', 'price'], msg: 'first' },
      { type: 'b', loc: ['body', 'price'], msg: 'second' },
      { type: 'c', loc: ['body', 'tags', 0], msg: 'nested' },
    ]);
    expect(fieldErrors).toEqual({ price: 'first', 'tags.0': 'nested' });
  });
});
