// Browser tracing. Imported first by main.tsx so fetch is instrumented before any
// request leaves: every API call then carries a W3C `traceparent` header and the
// host's spans join the browser's trace.
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { WebTracerProvider } from '@opentelemetry/sdk-trace-web';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { tracesUrl } from './collector';

/**
 * Export is opt-in at build time: the dashboard is served offline by default and
 * must not try to reach a collector nobody configured. Trace propagation works
 * either way.
 */
const exportEndpoint = tracesUrl(import.meta.env.VITE_OTEL_EXPORTER_OTLP_ENDPOINT);

const spanProcessors: SpanProcessor[] = exportEndpoint
  ? [new BatchSpanProcessor(new OTLPTraceExporter({ url: exportEndpoint }))]
  : [];

const provider = new WebTracerProvider({
  resource: resourceFromAttributes({
    [ATTR_SERVICE_NAME]: 'nexa-dashboard',
    [ATTR_SERVICE_VERSION]: __APP_VERSION__,
  }),
  spanProcessors,
});

provider.register({ propagator: new W3CTraceContextPropagator() });

registerInstrumentations({
  tracerProvider: provider,
  instrumentations: [
    new FetchInstrumentation({
      // Same-origin requests get the header anyway; naming the origin keeps that
      // true if the page is ever served from a path the library treats differently.
      propagateTraceHeaderCorsUrls: [new RegExp(`^${escapeRegExp(window.location.origin)}/`)],
      // Never trace the exporter's own uploads.
      ignoreUrls: exportEndpoint ? [exportEndpoint] : [],
    }),
  ],
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
