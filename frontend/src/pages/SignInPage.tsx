import { useState, type FormEvent } from 'react';
import { Navigate, useLocation } from 'react-router-dom';
import { asApiError, type ApiError, type FieldErrors } from '../api/errors';
import { useAuth } from '../auth/AuthProvider';
import type { ReturnTo } from '../auth/RequireAuth';
import { ErrorMessage } from '../components/ErrorMessage';
import { FieldError, fieldDescription } from '../components/FieldError';
import { useDocumentTitle } from './useDocumentTitle';

export function SignInPage() {
  useDocumentTitle('Sign in');
  const { user, signIn } = useAuth();
  const location = useLocation();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [failure, setFailure] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);

  // Signed in (just now, or already): go where the person was headed.
  if (user) return <Navigate to={returnPath(location.state)} replace />;

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const missing: FieldErrors = {};
    if (username.trim() === '') missing.username = 'Enter your username.';
    if (password === '') missing.password = 'Enter your password.';
    setFieldErrors(missing);
    setFailure(null);
    if (Object.keys(missing).length > 0) {
      document.getElementById(missing.username ? 'sign-in-username' : 'sign-in-password')?.focus();
      return;
    }
    setBusy(true);
    try {
      await signIn(username.trim(), password);
    } catch (caught) {
      const error = asApiError(caught);
      setFailure(error);
      setFieldErrors(error.fieldErrors);
      setBusy(false);
    }
  }

  return (
    <div className="page narrow">
      <h1>Sign in</h1>
      <form className="card form" onSubmit={submit} noValidate aria-busy={busy}>
        <div className="field">
          <label htmlFor="sign-in-username">Username</label>
          <input
            {...fieldDescription('sign-in-username', fieldErrors.username)}
            type="text"
            autoComplete="username"
            autoCapitalize="none"
            spellCheck={false}
            value={username}
            onChange={(event) => setUsername(event.target.value)}
            required
          />
          <FieldError fieldId="sign-in-username" message={fieldErrors.username} />
        </div>
        <div className="field">
          <label htmlFor="sign-in-password">Password</label>
          <input
            {...fieldDescription('sign-in-password', fieldErrors.password)}
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(event) => setPassword(event.target.value)}
            required
          />
          <FieldError fieldId="sign-in-password" message={fieldErrors.password} />
        </div>
        <ErrorMessage error={failure} message={failure ? signInMessage(failure) : undefined} />
        <div className="button-row">
          <button type="submit" className="button primary" disabled={busy}>
            Sign in
          </button>
        </div>
      </form>
    </div>
  );
}

/** Sign-in's 401 is about the password, not an expired session. */
function signInMessage(error: ApiError): string | undefined {
  return error.status === 401 ? `${error.detail}.` : undefined;
}

function returnPath(state: unknown): string {
  const from = (state as ReturnTo | null)?.from;
  // Only paths inside this app: never bounce back to the sign-in page itself.
  if (!from?.pathname?.startsWith('/') || from.pathname.startsWith('//') || from.pathname.startsWith('/app/sign-in')) {
    return '/';
  }
  return `${from.pathname}${from.search ?? ''}${from.hash ?? ''}`;
}
