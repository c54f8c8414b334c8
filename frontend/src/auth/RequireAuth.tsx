import type { ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router-dom';
import { useAuth } from './AuthProvider';

export const SIGN_IN_PATH = '/app/sign-in';

/** Where the sign-in page sends the person back to. */
export interface ReturnTo {
  from?: { pathname: string; search?: string; hash?: string };
}

/** Sends signed-out visitors to sign-in, remembering where they wanted to go. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { status } = useAuth();
  const location = useLocation();

  if (status === 'restoring') {
    return (
      <p role="status" className="muted">
        Checking your session…
      </p>
    );
  }
  if (status === 'signedOut') {
    const state: ReturnTo = { from: { pathname: location.pathname, search: location.search, hash: location.hash } };
    return <Navigate to={SIGN_IN_PATH} replace state={state} />;
  }
  return <>{children}</>;
}
