import { describe, expect, it } from 'vitest';
import {
  emailProblem,
  ownerIdProblem,
  passwordProblem,
  itemProblems,
  registrationProblems,
  usernameProblem,
  utf8Length,
} from './validation';

describe('usernameProblem', () => {
  it.each(['abc', 'admin', 'a.b-c_d', 'x'.repeat(50)])('accepts %s', (name) => {
    expect(usernameProblem(name)).toBeNull();
  });

  it.each(['ab', 'x'.repeat(51), 'with space', 'émile', 'semi;colon', ''])('refuses %j', (name) => {
    expect(usernameProblem(name)).not.toBeNull();
  });
});

describe('passwordProblem counts UTF-8 bytes, not characters', () => {
  it('measures multi-byte characters', () => {
    expect(utf8Length('é')).toBe(2);
    expect(utf8Length('€')).toBe(3);
    expect(utf8Length('🔑')).toBe(4);
  });

  it('accepts exactly 8 and 72 bytes', () => {
    expect(passwordProblem('a'.repeat(8))).toBeNull();
    expect(passwordProblem('a'.repeat(72))).toBeNull();
  });

  it('refuses 7 bytes and 73 bytes', () => {
    expect(passwordProblem('a'.repeat(7))).toMatch(/at least 8 bytes/);
    expect(passwordProblem('a'.repeat(73))).toMatch(/at most 72 bytes/);
  });

  it('accepts four emoji (16 bytes) although they are only 4 characters', () => {
    expect(passwordProblem('🔑🔑🔑🔑')).toBeNull();
  });

  it('refuses 25 euro signs: 25 characters but 75 bytes', () => {
    const password = '€'.repeat(25);
    expect(password.length).toBe(25);
    expect(passwordProblem(password)).toMatch(/it is 75/);
  });

  it('counts a 36-character accented password as 72 bytes, the limit', () => {
    expect(passwordProblem('é'.repeat(36))).toBeNull();
    expect(passwordProblem('é'.repeat(36) + 'a')).not.toBeNull();
  });
});

describe('emailProblem mirrors the API', () => {
  it.each(['admin@example.com', 'a.b+tag@sub.example.org', '  padded@example.com  ', 'jörg@bücher.de'])(
    'accepts %s',
    (email) => expect(emailProblem(email)).toBeNull(),
  );

  it.each([
    '',
    'plain',
    '@example.com',
    'user@localhost',
    'user@.example.com',
    'user@example.com.',
    'user@exa..mple.com',
    'us er@example.com',
    'user@exa_mple.com',
    `${'x'.repeat(65)}@example.com`,
  ])('refuses %j', (email) => expect(emailProblem(email)).not.toBeNull());
});

describe('itemProblems', () => {
  const item = { name: 'Lamp', description: '', price: '12.50', is_available: true };

  it('asks for a name and a price', () => {
    expect(itemProblems({ ...item, name: '   ', price: ' ' })).toEqual({
      name: 'Enter a name.',
      price: 'Enter a price.',
    });
  });

  it('leaves value rules to the API, which names the field in its 422', () => {
    expect(itemProblems({ ...item, price: '12.345' })).toEqual({});
    expect(itemProblems({ ...item, name: 'x'.repeat(300) })).toEqual({});
  });
});

describe('ownerIdProblem', () => {
  it('accepts empty (no filter) and positive integers only', () => {
    expect(ownerIdProblem('')).toBeNull();
    expect(ownerIdProblem('42')).toBeNull();
    expect(ownerIdProblem('0')).not.toBeNull();
    expect(ownerIdProblem('-3')).not.toBeNull();
    expect(ownerIdProblem('1.5')).not.toBeNull();
  });
});

describe('registrationProblems', () => {
  it('reports every field at once', () => {
    expect(registrationProblems({ email: 'nope', username: 'a', password: 'short' })).toEqual({
      email: expect.any(String),
      username: expect.any(String),
      password: expect.any(String),
    });
  });

  it('is empty for a valid registration', () => {
    expect(registrationProblems({ email: 'bob@example.com', username: 'bob', password: 'long enough' })).toEqual({});
  });
});
