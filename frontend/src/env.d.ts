/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** OTLP/HTTP collector base URL (or full `/v1/traces` URL); unset = no span export. */
  readonly VITE_OTEL_EXPORTER_OTLP_ENDPOINT?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}

/** package.json's version, injected by vite.config.ts. */
declare const __APP_VERSION__: string;
