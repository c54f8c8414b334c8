// Where the dashboard exports spans, if anywhere. Used by telemetry.ts in the page
// and by vite.config.ts at build time (the collector's origin goes into the
// dashboard's Content-Security-Policy), so both read the variable the same way.

/**
 * Follows the OTEL_EXPORTER_OTLP_ENDPOINT convention: a base URL gets `/v1/traces`
 * appended; a URL that already names the traces path is used as it is.
 */
export function tracesUrl(endpoint: string | undefined): string | null {
  const base = endpoint?.trim();
  if (!base) return null;
  if (/\/v1\/traces\/?$/.test(base)) return base;
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * The origin the page must be allowed to connect to for the exports: null without
 * a collector or for a relative URL (the page's own origin, which `'self'` covers).
 */
export function collectorOrigin(endpoint: string | undefined): string | null {
  const url = tracesUrl(endpoint);
  if (!url || !URL.canParse(url)) return null;
  const { protocol, origin } = new URL(url);
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new Error(`VITE_OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL or a path, not ${url}`);
  }
  return origin;
}
