import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { createMemoryRouter, RouterProvider } from 'react-router-dom';
import { beforeEach, describe, expect, it } from 'vitest';
import { session } from './api/session';
import type { Health, Item, User } from './api/types';
import { AuthProvider } from './auth/AuthProvider';
import { routes } from './routes';
import { jsonResponse, requestHeaders, sampleToken, stubFetch, type Route } from './test/http';

const admin: User = {
  id: 1,
  email: 'admin@example.com',
  username: 'admin',
  role: 'admin',
  is_active: true,
  created_at: '2025-01-01T00:00:00Z',
};
const bob: User = { ...admin, id: 7, username: 'bob', email: 'bob@example.com', role: 'user' };

const lamp: Item = {
  id: 1,
  name: 'Lamp',
  description: 'Warm light',
  price: 19.99,
  is_available: true,
  owner_id: 1,
  created_at: '2025-01-01T00:00:00Z',
  updated_at: '2025-01-01T00:00:00Z',
};

const health: Health = {
  status: 'operational',
  version: '1.0.0',
  components: { database: { status: 'healthy', latency_ms: 1 }, cache: { status: 'healthy', latency_ms: 1 } },
  timestamp: '2025-01-01T00:00:00Z',
};

const signedOut: Record<string, Route> = {
  'POST /auth/refresh': () => jsonResponse(401, { detail: 'Invalid refresh token' }),
  'GET /health': () => jsonResponse(200, health),
  'GET /items': () => jsonResponse(200, [lamp]),
};

function signedInAs(user: User): Record<string, Route> {
  return {
    ...signedOut,
    'POST /auth/refresh': () => jsonResponse(200, sampleToken(`token-${user.username}`)),
    'GET /users/me': () => jsonResponse(200, user),
  };
}

function renderApp(path: string) {
  const router = createMemoryRouter(routes, { initialEntries: [path] });
  render(
    <AuthProvider>
      <RouterProvider router={router} />
    </AuthProvider>,
  );
  return router;
}

beforeEach(() => session.clear());

describe('routing and sign-in', () => {
  it('shows "Page not found" with a link home for unknown routes', async () => {
    stubFetch(signedOut);
    renderApp('/app/nothing-here');
    expect(await screen.findByRole('heading', { level: 1, name: 'Page not found' })).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'Go to the overview' })).toHaveAttribute('href', '/');
  });

  it('sends signed-out visitors to sign-in and back to where they were going', async () => {
    const fetch = stubFetch({
      ...signedOut,
      'POST /auth/token': () => jsonResponse(200, sampleToken('fresh')),
      'GET /users/me': () => jsonResponse(200, admin),
      'GET /users': () => jsonResponse(200, [admin, bob]),
    });
    const user = userEvent.setup();
    const router = renderApp('/app/users');

    expect(await screen.findByRole('heading', { level: 1, name: 'Sign in' })).toBeInTheDocument();
    expect(router.state.location.pathname).toBe('/app/sign-in');

    await user.type(screen.getByLabelText('Username'), 'admin');
    await user.type(screen.getByLabelText('Password'), 'admin-dev-password');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));

    expect(await screen.findByRole('heading', { level: 1, name: 'Users' })).toBeInTheDocument();
    expect(router.state.location.pathname).toBe('/app/users');
    expect(await screen.findByRole('cell', { name: 'bob@example.com' })).toBeInTheDocument();
    const tokenCall = fetch.mock.calls.find(([url]) => url === '/auth/token');
    expect(tokenCall?.[1]?.body).toBe('{"username":"admin","password":"admin-dev-password"}');
    expect(screen.getByText(/Signed in as/)).toHaveTextContent('Signed in as admin');
  });

  it('explains a wrong password with the request id', async () => {
    stubFetch({
      ...signedOut,
      'POST /auth/token': () =>
        jsonResponse(401, { detail: 'Incorrect username or password' }, { 'x-request-id': 'login-1' }),
    });
    const user = userEvent.setup();
    renderApp('/app/sign-in');

    await user.type(await screen.findByLabelText('Username'), 'admin');
    await user.type(screen.getByLabelText('Password'), 'wrong-password');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));

    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Incorrect username or password.');
    expect(alert).toHaveTextContent('Request id: login-1');
  });

  it('restores the session from the refresh cookie on load and signs out', async () => {
    const fetch = stubFetch({ ...signedInAs(admin), 'POST /auth/logout': () => new Response(null, { status: 204 }) });
    const user = userEvent.setup();
    renderApp('/');

    expect(await screen.findByText(/Signed in as/)).toHaveTextContent('admin');
    await user.click(screen.getByRole('button', { name: 'Sign out' }));

    expect(await screen.findByRole('link', { name: 'Sign in' })).toBeInTheDocument();
    const logout = fetch.mock.calls.findIndex(([url]) => url === '/auth/logout');
    expect(requestHeaders(fetch, logout).Authorization).toBe('Bearer token-admin');
    expect(session.token).toBeNull();
  });
});

describe('admin-only users page', () => {
  it('tells a regular user they need admin rights and hides the nav link', async () => {
    stubFetch(signedInAs(bob));
    renderApp('/app/users');

    expect(await screen.findByText(/You need admin rights/)).toBeInTheDocument();
    const nav = screen.getByRole('navigation', { name: 'Main' });
    expect(within(nav).queryByRole('link', { name: 'Users' })).toBeNull();
    expect(within(nav).getByRole('link', { name: 'Items' })).toBeInTheDocument();
  });

  it('validates a registration before sending and shows a 409 by its field', async () => {
    let posts = 0;
    stubFetch({
      ...signedInAs(admin),
      'GET /users': () => jsonResponse(200, [admin]),
      'POST /users': () => {
        posts += 1;
        return jsonResponse(409, { detail: 'Email already registered' }, { 'x-request-id': 'dup-1' });
      },
    });
    const user = userEvent.setup();
    renderApp('/app/users');

    await user.type(await screen.findByLabelText('Email'), 'admin@example');
    await user.type(screen.getByLabelText('Username'), 'no spaces');
    await user.type(screen.getByLabelText('Password'), '€€€€€€€€€€€€€€€€€€€€€€€€€'); // 25 chars, 75 bytes
    await user.click(screen.getByRole('button', { name: 'Create user' }));

    expect(posts).toBe(0);
    expect(screen.getByLabelText('Email')).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByLabelText('Username')).toHaveAttribute('aria-invalid', 'true');
    expect(screen.getByLabelText('Password')).toHaveAccessibleDescription(expect.stringContaining('at most 72 bytes'));

    await user.clear(screen.getByLabelText('Email'));
    await user.type(screen.getByLabelText('Email'), 'admin@example.com');
    await user.clear(screen.getByLabelText('Username'));
    await user.type(screen.getByLabelText('Username'), 'admin2');
    await user.clear(screen.getByLabelText('Password'));
    await user.type(screen.getByLabelText('Password'), 'long enough');
    await user.click(screen.getByRole('button', { name: 'Create user' }));

    await waitFor(() => expect(posts).toBe(1));
    expect(await screen.findByLabelText('Email')).toHaveAccessibleDescription('Email already registered.');
    expect(screen.getByRole('alert')).toHaveTextContent('Request id: dup-1');
  });
});

describe('items', () => {
  it('edits with PUT, toggles availability with PATCH and deletes after confirming', async () => {
    const writes: string[] = [];
    const record: Route = (url, init) => {
      writes.push(`${init.method} ${url} ${init.body ?? ''}`.trim());
      return init.method === 'DELETE' ? new Response(null, { status: 204 }) : jsonResponse(200, lamp);
    };
    stubFetch({ ...signedInAs(admin), 'PUT /items/1': record, 'PATCH /items/1': record, 'DELETE /items/1': record });
    const user = userEvent.setup();
    renderApp('/app/items');

    await user.click(await screen.findByRole('button', { name: 'Mark unavailable Lamp' }));
    await waitFor(() => expect(writes).toEqual(['PATCH /items/1 {"is_available":false}']));

    await user.click(screen.getByRole('button', { name: 'Edit Lamp' }));
    const editor = await screen.findByRole('dialog', { name: 'Edit “Lamp”' });
    await user.clear(within(editor).getByLabelText('Price'));
    await user.type(within(editor).getByLabelText('Price'), '25');
    await user.click(within(editor).getByRole('button', { name: 'Save changes' }));
    await waitFor(() =>
      expect(writes[1]).toBe('PUT /items/1 {"name":"Lamp","description":"Warm light","price":"25","is_available":true}'),
    );

    await user.click(screen.getByRole('button', { name: 'Delete Lamp' }));
    const confirm = await screen.findByRole('dialog', { name: 'Delete item?' });
    await user.click(within(confirm).getByRole('button', { name: 'Delete' }));
    await waitFor(() => expect(writes[2]).toBe('DELETE /items/1'));
    expect(await screen.findByText('Deleted “Lamp”.')).toBeInTheDocument();
  });

  it('asks for one row more than the page size to know whether "Next" is possible', async () => {
    const fetch = stubFetch(signedOut);
    renderApp('/app/items?size=25&page=2&owner=3');
    await screen.findByRole('button', { name: 'Edit Lamp' });
    const itemsCall = fetch.mock.calls.find(([url]) => String(url).startsWith('/items'));
    expect(itemsCall?.[0]).toBe('/items?skip=25&limit=26&owner_id=3&order=asc');
    expect(screen.getByRole('button', { name: 'Next' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Previous' })).toBeEnabled();
    expect(screen.getByRole('button', { name: 'New item' })).toBeDisabled();
  });

  it('sorts newest first through the API, from the first page', async () => {
    const fetch = stubFetch(signedOut);
    renderApp('/app/items?page=3');
    await screen.findByRole('button', { name: 'Edit Lamp' });
    await userEvent.click(screen.getByRole('button', { name: 'Sort by ID' }));
    await waitFor(() =>
      expect(fetch.mock.calls.map(([url]) => String(url))).toContain('/items?skip=0&limit=11&order=desc'),
    );
  });
});
