import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { Item, User } from '../api/types';
import { NOT_OWNER_REASON } from '../auth/permissions';
import { ItemsTable } from './ItemsTable';

const alice: User = {
  id: 2,
  email: 'alice@example.com',
  username: 'alice',
  role: 'user',
  is_active: true,
  created_at: '2025-01-01T00:00:00Z',
};
const admin: User = { ...alice, id: 1, username: 'admin', role: 'admin' };

function item(id: number, ownerId: number, name: string): Item {
  return {
    id,
    name,
    description: null,
    price: 10,
    is_available: true,
    owner_id: ownerId,
    created_at: '2025-01-01T00:00:00Z',
    updated_at: '2025-01-01T00:00:00Z',
  };
}

const items = [item(1, 1, "Admin's lamp"), item(2, 2, "Alice's chair")];

function renderTable(user: User | null) {
  render(
    <>
      <p id="signed-out-reason">Sign in to create or change items.</p>
      <ItemsTable
        items={items}
        user={user}
        order="asc"
        onToggleOrder={() => {}}
        onEdit={() => {}}
        onToggleAvailability={() => {}}
        onDelete={() => {}}
        busyIds={new Set()}
        signedOutReasonId="signed-out-reason"
      />
    </>,
  );
}

function row(name: string) {
  return screen.getByRole('row', { name: new RegExp(name) });
}

describe('ItemsTable permissions', () => {
  it("disables another person's item for a regular user and says why", () => {
    renderTable(alice);
    const foreign = within(row("Admin's lamp"));
    for (const action of [/^Edit/, /^Mark unavailable/, /^Delete/]) {
      const button = foreign.getByRole('button', { name: action });
      expect(button).toBeDisabled();
      expect(button).toHaveAttribute('title', NOT_OWNER_REASON);
      expect(button).toHaveAccessibleDescription(NOT_OWNER_REASON);
    }
    expect(foreign.getByText(NOT_OWNER_REASON)).toBeVisible();
  });

  it('leaves the owner their own item', () => {
    renderTable(alice);
    const own = within(row("Alice's chair"));
    expect(own.getByRole('button', { name: /^Edit/ })).toBeEnabled();
    expect(own.getByRole('button', { name: /^Delete/ })).toBeEnabled();
    expect(own.queryByText(NOT_OWNER_REASON)).toBeNull();
  });

  it('lets an admin change everything', () => {
    renderTable(admin);
    for (const button of screen.getAllByRole('button', { name: /^(Edit|Delete|Mark)/ })) {
      expect(button).toBeEnabled();
    }
  });

  it('points signed-out visitors at the shared sign-in explanation', () => {
    renderTable(null);
    const button = within(row("Alice's chair")).getByRole('button', { name: /^Delete/ });
    expect(button).toBeDisabled();
    expect(button).toHaveAccessibleDescription('Sign in to create or change items.');
  });

  it('gives each row action a name that includes the item', () => {
    renderTable(admin);
    expect(screen.getByRole('button', { name: "Edit Alice's chair" })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: "Mark unavailable Admin's lamp" })).toBeInTheDocument();
  });
});
