import { Link, NavLink, Outlet } from 'react-router-dom';
import { useAuth } from '../auth/AuthProvider';
import { isAdmin } from '../auth/permissions';
import { SIGN_IN_PATH } from '../auth/RequireAuth';

/** The frame of every page: skip link, header with navigation and account, main, footer. */
export function Layout() {
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <div className="site-header-inner">
          <Link to="/" className="brand">
            <span className="brand-mark" aria-hidden="true">
              N
            </span>
            Nexa
          </Link>
          <MainNav />
          <Account />
        </div>
      </header>
      <main id="main" className="site-main" tabIndex={-1}>
        <Outlet />
      </main>
      <footer className="site-footer">
        <p>
          Nexa dashboard {__APP_VERSION__}
          <span aria-hidden="true"> · </span>
          {/* A plain link: /api-docs is a separate page, not a client route. */}
          <a href="/api-docs">API docs</a>
        </p>
      </footer>
    </>
  );
}

function MainNav() {
  const { user } = useAuth();
  return (
    <nav aria-label="Main" className="main-nav">
      <NavLink to="/" end>
        Overview
      </NavLink>
      <NavLink to="/app/items">Items</NavLink>
      {isAdmin(user) && <NavLink to="/app/users">Users</NavLink>}
    </nav>
  );
}

function Account() {
  const { status, user, signOut } = useAuth();
  if (status === 'restoring') return <p className="account muted">Checking session…</p>;
  if (!user) {
    return (
      <div className="account">
        <Link to={SIGN_IN_PATH} className="button secondary small">
          Sign in
        </Link>
      </div>
    );
  }
  return (
    <div className="account">
      <p className="account-name">
        Signed in as <strong>{user.username}</strong>
        {isAdmin(user) && <span className="pill pill-role">admin</span>}
      </p>
      <button type="button" className="button secondary small" onClick={() => void signOut()}>
        Sign out
      </button>
    </div>
  );
}
