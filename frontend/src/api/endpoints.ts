// One function per API operation the dashboard uses; paths and verbs live only here.
import { apiRequest } from './client';
import { ApiError } from './errors';
import type { Health, Item, ItemDraft, ItemPatch, TokenResponse, User, UserCreate } from './types';

export function issueToken(username: string, password: string): Promise<TokenResponse> {
  return apiRequest('/auth/token', {
    method: 'POST',
    body: { username, password },
    authenticated: false,
  });
}

export function logout(): Promise<void> {
  return apiRequest('/auth/logout', { method: 'POST' });
}

export function fetchCurrentUser(): Promise<User> {
  return apiRequest('/users/me');
}

export function listUsers(page: { skip: number; limit: number }): Promise<User[]> {
  return apiRequest('/users', { query: page });
}

export function createUser(user: UserCreate): Promise<User> {
  return apiRequest('/users', { method: 'POST', body: user });
}

export interface ItemQuery {
  skip: number;
  limit: number;
  ownerId?: number | undefined;
  /** By id; the API's default is ascending. */
  order?: 'asc' | 'desc';
}

export function listItems(query: ItemQuery, signal?: AbortSignal): Promise<Item[]> {
  return apiRequest('/items', {
    query: { skip: query.skip, limit: query.limit, owner_id: query.ownerId, order: query.order },
    signal,
  });
}

export function createItem(draft: ItemDraft): Promise<Item> {
  const { description, ...rest } = draft;
  // An empty description is simply left out rather than stored as "".
  return apiRequest('/items', {
    method: 'POST',
    body: description ? { ...rest, description } : rest,
  });
}

/** Full replace (PUT): every field is sent; a null description clears it. */
export function replaceItem(id: number, draft: ItemDraft): Promise<Item> {
  return apiRequest(`/items/${id}`, { method: 'PUT', body: draft });
}

/** Partial update (PATCH): only the given fields change. */
export function patchItem(id: number, patch: ItemPatch): Promise<Item> {
  return apiRequest(`/items/${id}`, { method: 'PATCH', body: patch });
}

export function deleteItem(id: number): Promise<void> {
  return apiRequest(`/items/${id}`, { method: 'DELETE' });
}

/**
 * GET /health answers 503 with the same body when a dependency is down; that is
 * a result to show ("degraded"), not a failure. Only a 503 without it (host
 * overload) or no answer at all is thrown.
 */
export async function fetchHealth(signal?: AbortSignal): Promise<Health> {
  try {
    return await apiRequest<Health>('/health', { signal, authenticated: false });
  } catch (error) {
    if (error instanceof ApiError && error.status === 503 && isHealth(error.body)) return error.body;
    throw error;
  }
}

function isHealth(body: unknown): body is Health {
  if (typeof body !== 'object' || body === null) return false;
  const candidate = body as Partial<Health>;
  return typeof candidate.status === 'string' && typeof candidate.components === 'object';
}
