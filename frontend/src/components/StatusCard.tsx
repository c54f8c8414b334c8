import { useCallback, useEffect, useRef, useState } from 'react';
import { fetchHealth } from '../api/endpoints';
import { asApiError, type ApiError } from '../api/errors';
import type { Health, Probe } from '../api/types';
import { formatLatency, formatTime } from '../format';
import { ErrorMessage } from './ErrorMessage';

export const HEALTH_POLL_MS = 10_000;

type Overall = 'checking' | 'operational' | 'degraded' | 'unreachable';

const OVERALL_LABEL: Record<Overall, string> = {
  checking: 'Checking…',
  operational: 'Operational',
  degraded: 'Degraded',
  unreachable: 'Unreachable',
};

/** The host's /health, polled every few seconds while this card is on screen. */
export function StatusCard({ pollMs = HEALTH_POLL_MS }: { pollMs?: number }) {
  const [health, setHealth] = useState<Health | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [checkedAt, setCheckedAt] = useState<Date | null>(null);
  const inFlight = useRef<AbortController | null>(null);

  const check = useCallback(async () => {
    inFlight.current?.abort();
    const controller = new AbortController();
    inFlight.current = controller;
    try {
      const result = await fetchHealth(controller.signal);
      setHealth(result);
      setError(null);
    } catch (caught) {
      if (controller.signal.aborted) return;
      // Stale numbers next to an error would contradict it; show only the error.
      setHealth(null);
      setError(asApiError(caught));
    }
    setCheckedAt(new Date());
  }, []);

  useEffect(() => {
    void check();
    const timer = setInterval(() => void check(), pollMs);
    return () => {
      clearInterval(timer);
      inFlight.current?.abort();
    };
  }, [check, pollMs]);

  const overall: Overall = error ? 'unreachable' : (health?.status ?? 'checking');

  return (
    <section className="card status-card" aria-labelledby="status-card-title">
      <div className="card-header">
        <h2 id="status-card-title">System status</h2>
        {/* role=status: screen readers hear the overall state when it changes, not every poll. */}
        <p role="status" className={`badge badge-${overall}`}>
          <span className="visually-hidden">Overall status: </span>
          {OVERALL_LABEL[overall]}
        </p>
      </div>

      {error && (
        <>
          <p className="status-problem">The API health check failed, so the service may be down.</p>
          <ErrorMessage error={error} />
        </>
      )}

      {health && (
        <dl className="status-list">
          <ProbeRow name="Database" probe={health.components.database} />
          <ProbeRow name="Cache" probe={health.components.cache} />
          <div className="status-row">
            <dt>Version</dt>
            <dd>{health.version}</dd>
          </div>
        </dl>
      )}

      <div className="card-footer">
        <p className="muted">
          {checkedAt ? (
            <>
              Last checked <time dateTime={checkedAt.toISOString()}>{formatTime(checkedAt)}</time>
            </>
          ) : (
            'Not checked yet'
          )}
          <span aria-hidden="true"> · </span>refreshes every {Math.round(pollMs / 1000)} s
        </p>
        <button type="button" className="button secondary small" onClick={() => void check()}>
          Check now
        </button>
      </div>
    </section>
  );
}

function ProbeRow({ name, probe }: { name: string; probe: Probe }) {
  const healthy = probe.status === 'healthy';
  return (
    <div className="status-row">
      <dt>{name}</dt>
      <dd>
        <span className={`dot ${healthy ? 'dot-ok' : 'dot-bad'}`} aria-hidden="true" />
        {healthy ? 'Healthy' : 'Unhealthy'}
        <span className="muted"> · {formatLatency(probe.latency_ms)}</span>
        {probe.error && <span className="probe-error">{probe.error}</span>}
      </dd>
    </div>
  );
}
