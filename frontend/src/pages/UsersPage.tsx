import { useEffect, useState } from 'react';
import { listUsers } from '../api/endpoints';
import { asApiError, type ApiError } from '../api/errors';
import type { User } from '../api/types';
import { useAuth } from '../auth/AuthProvider';
import { isAdmin } from '../auth/permissions';
import { ErrorMessage } from '../components/ErrorMessage';
import { PAGE_SIZES, Pager } from '../components/Pager';
import { RegistrationForm } from '../components/RegistrationForm';
import { formatDateTime } from '../format';
import { useDocumentTitle } from './useDocumentTitle';

/** Reached only when signed in (see App); admins see users, others an explanation. */
export function UsersPage() {
  useDocumentTitle('Users');
  const { user } = useAuth();
  if (!isAdmin(user)) {
    return (
      <div className="page narrow">
        <h1>Users</h1>
        <p className="notice">You need admin rights to see and register users.</p>
      </div>
    );
  }
  return <UserAdministration />;
}

function UserAdministration() {
  const [page, setPage] = useState(1);
  const [size, setSize] = useState<number>(PAGE_SIZES[1]);
  const [users, setUsers] = useState<User[] | null>(null);
  const [hasNext, setHasNext] = useState(false);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [reloads, setReloads] = useState(0);
  const [notice, setNotice] = useState('');

  useEffect(() => {
    let current = true;
    setLoadError(null);
    // One extra row tells whether a next page exists (the API returns no total).
    listUsers({ skip: (page - 1) * size, limit: size + 1 })
      .then((rows) => {
        if (!current) return;
        setUsers(rows.slice(0, size));
        setHasNext(rows.length > size);
      })
      .catch((error: unknown) => current && setLoadError(asApiError(error)));
    return () => {
      current = false;
    };
  }, [page, size, reloads]);

  return (
    <div className="page">
      <h1>Users</h1>
      <div className="users-layout">
        <section className="card" aria-labelledby="users-list-title">
          <h2 id="users-list-title">All users</h2>
          <ErrorMessage error={loadError} />
          {users === null && !loadError && <p className="muted">Loading users…</p>}
          {users && users.length === 0 && <p className="empty">No users on this page.</p>}
          {users && users.length > 0 && <UsersTable users={users} />}
          <Pager
            label="Users pages"
            page={page}
            pageSize={size}
            hasNext={hasNext}
            onPage={setPage}
            onPageSize={(next) => {
              setSize(next);
              setPage(1);
            }}
          />
        </section>
        <section className="card" aria-labelledby="register-title">
          <p role="status" className="success">
            {notice}
          </p>
          <RegistrationForm
            onSubmit={() => setNotice('')}
            onCreated={(created) => {
              setNotice(`Created user “${created.username}” (ID ${created.id}).`);
              setReloads((count) => count + 1);
            }}
          />
        </section>
      </div>
    </div>
  );
}

function UsersTable({ users }: { users: User[] }) {
  return (
    <div className="table-wrap">
      <table className="data-table users-table">
        <caption className="visually-hidden">Users</caption>
        <thead>
          <tr>
            <th scope="col">ID</th>
            <th scope="col">Username</th>
            <th scope="col">Email</th>
            <th scope="col">Role</th>
            <th scope="col">Active</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {users.map((user) => (
            <tr key={user.id}>
              <td data-label="ID">{user.id}</td>
              <td data-label="Username">{user.username}</td>
              <td data-label="Email">{user.email}</td>
              <td data-label="Role">{user.role === 'admin' ? 'Admin' : 'User'}</td>
              <td data-label="Active">{user.is_active ? 'Yes' : 'No'}</td>
              <td data-label="Created">
                <time dateTime={user.created_at}>{formatDateTime(user.created_at)}</time>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
