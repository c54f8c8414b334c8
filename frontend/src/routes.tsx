import type { RouteObject } from 'react-router-dom';
import { RequireAuth } from './auth/RequireAuth';
import { Layout } from './components/Layout';
import { ItemsPage } from './pages/ItemsPage';
import { NotFoundPage } from './pages/NotFoundPage';
import { OverviewPage } from './pages/OverviewPage';
import { SignInPage } from './pages/SignInPage';
import { UsersPage } from './pages/UsersPage';

// The host serves index.html at `/` and under `/app/`; everything else of ours lives there.
// Items are public to read (GET /items needs no token), so only Users requires sign-in.
export const routes: RouteObject[] = [
  {
    element: <Layout />,
    children: [
      { index: true, element: <OverviewPage /> },
      { path: 'app/sign-in', element: <SignInPage /> },
      { path: 'app/items', element: <ItemsPage /> },
      {
        path: 'app/users',
        element: (
          <RequireAuth>
            <UsersPage />
          </RequireAuth>
        ),
      },
      { path: '*', element: <NotFoundPage /> },
    ],
  },
];
