// Client-side copies of the API's registration rules (components/api/src/users.rs), so a
// person sees problems before anything is sent. The server stays the authority: its 422s
// are shown the same way, and item value rules are left to it (see itemProblems).
import type { FieldErrors } from './api/errors';
import type { UserCreate } from './api/types';

export const USERNAME_LENGTH = { min: 3, max: 50 } as const;
/** Bytes, not characters: bcrypt reads at most 72 bytes and the API refuses longer. */
export const PASSWORD_BYTES = { min: 8, max: 72 } as const;
/** Shown as a hint on the item form; the API enforces it. */
export const DESCRIPTION_MAX = 10_000;

const utf8 = new TextEncoder();

export function utf8Length(text: string): number {
  return utf8.encode(text).length;
}

export function emailProblem(raw: string): string | null {
  const email = raw.trim();
  if (email === '') return 'Enter an email address.';
  const at = email.indexOf('@');
  if (at < 0) return 'Enter an email address like name@example.com.';
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  const valid =
    local !== '' &&
    utf8Length(local) <= 64 &&
    utf8Length(domain) <= 255 &&
    domain.includes('.') &&
    !domain.startsWith('.') &&
    !domain.endsWith('.') &&
    !domain.includes('..') &&
    !/[\s\p{Cc}]/u.test(email) &&
    /^[\p{L}\p{N}.-]+$/u.test(domain);
  return valid ? null : 'Enter an email address like name@example.com.';
}

export function usernameProblem(username: string): string | null {
  if (username.length < USERNAME_LENGTH.min || username.length > USERNAME_LENGTH.max) {
    return `Username must be ${USERNAME_LENGTH.min} to ${USERNAME_LENGTH.max} characters.`;
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(username)) {
    return "Username may only contain letters, digits, '_', '.' and '-'.";
  }
  return null;
}

export function passwordProblem(password: string): string | null {
  const bytes = utf8Length(password);
  if (bytes < PASSWORD_BYTES.min) {
    return `Password must be at least ${PASSWORD_BYTES.min} bytes (it is ${bytes}).`;
  }
  if (bytes > PASSWORD_BYTES.max) {
    return `Password must be at most ${PASSWORD_BYTES.max} bytes (it is ${bytes}; accented letters and emoji take more than one).`;
  }
  return null;
}

/** Owner filter: empty means "everyone"; otherwise a positive whole number. */
export function ownerIdProblem(raw: string): string | null {
  const value = raw.trim();
  if (value === '' || /^[1-9]\d{0,17}$/.test(value)) return null;
  return 'Owner ID must be a whole number of 1 or more.';
}

export function registrationProblems(user: UserCreate): FieldErrors {
  const problems: FieldErrors = {};
  const email = emailProblem(user.email);
  const username = usernameProblem(user.username);
  const password = passwordProblem(user.password);
  if (email) problems.email = email;
  if (username) problems.username = username;
  if (password) problems.password = password;
  return problems;
}

export interface ItemFormValues {
  name: string;
  description: string;
  price: string;
  is_available: boolean;
}

/**
 * Items are checked here only for what is missing. Their value rules (name
 * and description lengths, at most two decimals, the price range) belong to
 * the API: its 422 names the field and the form shows the message there, so
 * the browser and the server can never disagree about a limit.
 */
export function itemProblems(values: ItemFormValues): FieldErrors {
  const problems: FieldErrors = {};
  if (values.name.trim() === '') problems.name = 'Enter a name.';
  if (values.price.trim() === '') problems.price = 'Enter a price.';
  return problems;
}
