import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { fetchCurrentUser, issueToken, logout } from '../api/endpoints';
import { session } from '../api/session';
import type { User } from '../api/types';

export type AuthStatus = 'restoring' | 'signedIn' | 'signedOut';

export interface Auth {
  status: AuthStatus;
  user: User | null;
  /** Throws ApiError (401 bad credentials, 429 locked out, ...). */
  signIn: (username: string, password: string) => Promise<User>;
  signOut: () => Promise<void>;
}

export const AuthContext = createContext<Auth | null>(null);

export function useAuth(): Auth {
  const auth = useContext(AuthContext);
  if (!auth) throw new Error('useAuth must be used inside <AuthProvider>');
  return auth;
}

/**
 * Owns "who is signed in". On start it tries the refresh cookie, so a reload
 * keeps the person signed in although the access token only ever lived in memory.
 */
export function AuthProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<AuthStatus>('restoring');
  const [user, setUser] = useState<User | null>(null);

  useEffect(() => {
    let active = true;
    restoreSession().then((restored) => {
      if (!active) return;
      setUser(restored);
      setStatus(restored ? 'signedIn' : 'signedOut');
    });
    return () => {
      active = false;
    };
  }, []);

  // The session can end without us asking: a refresh answered 401 (revoked, expired).
  useEffect(
    () =>
      session.subscribe(() => {
        if (session.token === null) {
          setUser(null);
          setStatus((current) => (current === 'restoring' ? current : 'signedOut'));
        }
      }),
    [],
  );

  const signIn = useCallback(async (username: string, password: string) => {
    session.accept(await issueToken(username, password));
    try {
      const me = await fetchCurrentUser();
      setUser(me);
      setStatus('signedIn');
      return me;
    } catch (error) {
      session.clear();
      throw error;
    }
  }, []);

  const signOut = useCallback(async () => {
    try {
      await logout();
    } catch {
      // Signing out locally must work even when the server cannot be reached;
      // the refresh token then simply expires on its own.
    } finally {
      session.clear();
      setUser(null);
      setStatus('signedOut');
    }
  }, []);

  const value = useMemo<Auth>(() => ({ status, user, signIn, signOut }), [status, user, signIn, signOut]);
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

async function restoreSession(): Promise<User | null> {
  try {
    if (!(await session.refresh())) return null;
    return await fetchCurrentUser();
  } catch {
    // No answer (offline, 503): start signed out rather than hang on "restoring".
    return null;
  }
}
