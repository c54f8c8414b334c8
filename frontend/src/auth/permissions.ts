import type { Item, User } from '../api/types';

export const SIGNED_OUT_REASON = 'Sign in to create or change items.';
export const NOT_OWNER_REASON = 'Only the owner or an admin can change this item.';

/** Mirrors the API's rule for item writes: the owner or an admin. */
export function canChangeItem(user: User | null, item: Item): boolean {
  return user !== null && (user.role === 'admin' || user.id === item.owner_id);
}

/** Why this person may not change this item, or null when they may. */
export function itemChangeBlocker(user: User | null, item: Item): string | null {
  if (user === null) return SIGNED_OUT_REASON;
  return canChangeItem(user, item) ? null : NOT_OWNER_REASON;
}

export function isAdmin(user: User | null): boolean {
  return user?.role === 'admin';
}
