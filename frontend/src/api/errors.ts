import type { ValidationIssue } from './types';

/** Field name (the part of `loc` after "body"/"query") → message to show next to it. */
export type FieldErrors = Record<string, string>;

/** A request that did not succeed, with everything the UI needs to explain it. */
export class ApiError extends Error {
  /** HTTP status, or 0 when the server could not be reached at all. */
  readonly status: number;
  /** The server's `detail` when it is a sentence, else a summary. */
  readonly detail: string;
  readonly fieldErrors: FieldErrors;
  /** From `x-request-id`, so a person can quote it when reporting the failure. */
  readonly requestId: string | null;
  /** Seconds, from `Retry-After` (429 and overload 503). */
  readonly retryAfter: number | null;
  /** The parsed JSON body, for callers that understand a failure's payload (e.g. /health's 503). */
  readonly body: unknown;

  constructor(init: {
    status: number;
    detail: string;
    fieldErrors?: FieldErrors;
    requestId?: string | null;
    retryAfter?: number | null;
    body?: unknown;
  }) {
    super(init.detail);
    this.name = 'ApiError';
    this.status = init.status;
    this.detail = init.detail;
    this.fieldErrors = init.fieldErrors ?? {};
    this.requestId = init.requestId ?? null;
    this.retryAfter = init.retryAfter ?? null;
    this.body = init.body;
  }

  get hasFieldErrors(): boolean {
    return Object.keys(this.fieldErrors).length > 0;
  }
}

/** Builds an ApiError from a non-2xx response. Never throws, whatever the body is. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  const body = await readJson(response);
  const requestId = response.headers.get('x-request-id');
  const retryAfter = parseRetryAfter(response.headers.get('retry-after'));
  const detail = isRecord(body) ? body.detail : undefined;

  if (Array.isArray(detail)) {
    const { fieldErrors, general } = splitValidationIssues(detail as ValidationIssue[]);
    return new ApiError({
      status: response.status,
      detail: general.length > 0 ? general.join(' ') : 'Some fields need attention.',
      fieldErrors,
      requestId,
      retryAfter,
      body,
    });
  }

  return new ApiError({
    status: response.status,
    detail: typeof detail === 'string' && detail !== '' ? detail : statusText(response),
    requestId,
    retryAfter,
    body,
  });
}

/** For fetch() rejections: no response, so no request id either. */
export function unreachableError(cause: unknown): ApiError {
  const error = new ApiError({ status: 0, detail: 'Could not reach the server.' });
  error.cause = cause;
  return error;
}

/**
 * Maps 422 issues onto form fields. `["body","price"]` → `price`; nested locations
 * keep their path (`["body","tags",0]` → `tags.0`); issues about the whole body
 * (e.g. `["body"]` for invalid JSON) become general messages.
 */
export function splitValidationIssues(issues: ValidationIssue[]): {
  fieldErrors: FieldErrors;
  general: string[];
} {
  const fieldErrors: FieldErrors = {};
  const general: string[] = [];
  for (const issue of issues) {
    const loc = Array.isArray(issue?.loc) ? issue.loc : [];
    const [source, ...path] = loc;
    const message = typeof issue?.msg === 'string' ? issue.msg : 'Invalid value';
    if ((source === 'body' || source === 'query' || source === 'path') && path.length > 0) {
      const field = path.join('.');
      // Keep the first message per field: it is usually the most basic problem.
      fieldErrors[field] ??= message;
    } else {
      general.push(message);
    }
  }
  return { fieldErrors, general };
}

/** `Retry-After` is either delta-seconds or an HTTP date; both become whole seconds from now. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null || value.trim() === '') return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/** The sentence to show a person for a failed request. */
export function humanMessage(error: ApiError): string {
  switch (error.status) {
    case 0:
      return 'Could not reach the server. Check your connection and try again.';
    case 401:
      return `You are not signed in or your session has ended (${error.detail}). Please sign in again.`;
    case 403:
      return `You are not allowed to do this: ${error.detail}.`;
    case 404:
      return `${error.detail}. It may have been deleted.`;
    case 409:
      return `${error.detail}.`;
    case 422:
      return error.hasFieldErrors ? 'Some fields need attention.' : `The request was not accepted: ${error.detail}`;
    case 429:
      return `Too many attempts. ${retryHint(error.retryAfter)}`;
    case 503:
      return `The service is temporarily unavailable. ${retryHint(error.retryAfter)}`;
    default:
      // Negative statuses are our own failures (see asApiError), not HTTP ones.
      return error.status < 0
        ? `Something went wrong: ${error.detail}`
        : `Something went wrong (HTTP ${error.status}): ${error.detail}`;
  }
}

export function retryHint(seconds: number | null): string {
  if (seconds === null) return 'Please try again shortly.';
  if (seconds <= 1) return 'Try again in 1 second.';
  if (seconds < 120) return `Try again in ${seconds} seconds.`;
  return `Try again in ${Math.ceil(seconds / 60)} minutes.`;
}

/** Anything thrown by our API calls becomes an ApiError, so components handle one type. */
export function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  return new ApiError({ status: -1, detail: error instanceof Error ? error.message : String(error) });
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

function statusText(response: Response): string {
  return response.statusText || `HTTP ${response.status}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
