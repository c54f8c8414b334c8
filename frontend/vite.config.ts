import { defineConfig, type Plugin } from 'vitest/config';
import react from '@vitejs/plugin-react';
import pkg from './package.json' with { type: 'json' };
import { collectorOrigin } from './src/collector';

// The Rust host (`nexa up`) listens here; the dev server forwards API paths to it
// so the browser sees one origin, as it does in production.
const API_ORIGIN = 'http://127.0.0.1:3000';
const API_PATHS = ['/auth', '/items', '/users', '/health', '/openapi.json'];

/**
 * Production serves the Swagger page at `/api-docs` (no `.html`); mirror that in
 * `vite dev` and `vite preview` so the footer link works locally too.
 */
function apiDocsWithoutExtension(): Plugin {
  const rewrite = (req: { url?: string }, _res: unknown, next: () => void) => {
    if (req.url === '/api-docs' || req.url?.startsWith('/api-docs?')) {
      req.url = req.url.replace('/api-docs', '/api-docs.html');
    }
    next();
  };
  return {
    name: 'nexa-api-docs-path',
    configureServer: (server) => void server.middlewares.use(rewrite),
    configurePreviewServer: (server) => void server.middlewares.use(rewrite),
  };
}

/**
 * The fallback component serves the dashboard with a Content-Security-Policy whose
 * `connect-src` is its own origin; a build that exports spans needs the collector's
 * too. Writes it (or nothing) to dist/csp-connect-src.txt, which
 * components/fallback/build.rs reads into the policy instead of serving it.
 */
function cspConnectSources(): Plugin {
  let endpoint: string | undefined;
  return {
    name: 'nexa-csp-connect-src',
    apply: 'build',
    configResolved: (config) => {
      // `config.env` holds the VITE_* variables from the environment and .env files,
      // exactly as `import.meta.env` will in the page.
      endpoint = config.env.VITE_OTEL_EXPORTER_OTLP_ENDPOINT;
    },
    generateBundle() {
      const origin = collectorOrigin(endpoint);
      this.emitFile({ type: 'asset', fileName: 'csp-connect-src.txt', source: origin ? `${origin}\n` : '' });
    },
  };
}

export default defineConfig({
  // Pages are served at `/`, `/app/...` and `/api-docs`: asset URLs must be absolute.
  base: '/',
  plugins: [react(), apiDocsWithoutExtension(), cspConnectSources()],
  define: {
    __APP_VERSION__: JSON.stringify(pkg.version),
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // Swagger UI alone is ~1.6 MB minified; it loads only on /api-docs, so the warning is noise.
    chunkSizeWarningLimit: 2_000,
    rollupOptions: {
      input: {
        main: 'index.html',
        'api-docs': 'api-docs.html',
      },
    },
  },
  server: {
    proxy: Object.fromEntries(API_PATHS.map((path) => [path, { target: API_ORIGIN }])),
  },
  preview: {
    proxy: Object.fromEntries(API_PATHS.map((path) => [path, { target: API_ORIGIN }])),
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    exclude: ['e2e/**', 'node_modules/**', 'dist/**'],
    setupFiles: ['src/test/setup.ts'],
    restoreMocks: true,
    unstubGlobals: true,
  },
});
