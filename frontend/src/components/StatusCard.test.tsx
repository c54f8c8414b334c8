import { render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import type { Health } from '../api/types';
import { jsonResponse, stubFetch } from '../test/http';
import { StatusCard } from './StatusCard';

const healthy: Health = {
  status: 'operational',
  version: '1.4.2',
  components: {
    database: { status: 'healthy', latency_ms: 2.5 },
    cache: { status: 'healthy', latency_ms: 0.4 },
  },
  timestamp: '2025-01-01T00:00:00Z',
};

const degraded: Health = {
  ...healthy,
  status: 'degraded',
  components: {
    database: { status: 'unhealthy', latency_ms: 1000, error: 'connection refused' },
    cache: { status: 'healthy', latency_ms: 0.4 },
  },
};

function term(name: string) {
  return screen.getByText(name, { selector: 'dt' }).nextElementSibling;
}

describe('StatusCard', () => {
  it('shows every component of a healthy system', async () => {
    stubFetch({ 'GET /health': () => jsonResponse(200, healthy) });
    render(<StatusCard />);

    // The status element is there at once ("Checking…"); wait for its answer.
    await waitFor(() => expect(screen.getByRole('status')).toHaveTextContent('Operational'));
    expect(term('Database')).toHaveTextContent('Healthy · 2.5 ms');
    expect(term('Cache')).toHaveTextContent('Healthy · 0.4 ms');
    expect(term('Version')).toHaveTextContent('1.4.2');
    expect(screen.getByText(/Last checked/)).toBeInTheDocument();
  });

  it('treats a 503 carrying a health report as degraded, not as an outage', async () => {
    stubFetch({ 'GET /health': () => jsonResponse(503, degraded) });
    render(<StatusCard />);

    // The status element is there at once ("Checking…"); wait for its answer.
    await waitFor(() => expect(screen.getByRole('status')).toHaveTextContent('Degraded'));
    expect(term('Database')).toHaveTextContent('Unhealthy');
    expect(term('Database')).toHaveTextContent('connection refused');
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('shows an error state with the request id when the host sheds load', async () => {
    stubFetch({
      'GET /health': () =>
        jsonResponse(503, { detail: 'Service temporarily unavailable' }, { 'retry-after': '2', 'x-request-id': 'busy-1' }),
    });
    render(<StatusCard />);

    // The status element is there at once ("Checking…"); wait for its answer.
    await waitFor(() => expect(screen.getByRole('status')).toHaveTextContent('Unreachable'));
    expect(screen.getByRole('alert')).toHaveTextContent('temporarily unavailable');
    expect(screen.getByRole('alert')).toHaveTextContent('Request id: busy-1');
  });

  it('shows an error state when the API cannot be reached', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))));
    render(<StatusCard />);

    // The status element is there at once ("Checking…"); wait for its answer.
    await waitFor(() => expect(screen.getByRole('status')).toHaveTextContent('Unreachable'));
    expect(screen.getByRole('alert')).toHaveTextContent('Could not reach the server');
    expect(screen.queryByText('Database')).toBeNull();
  });

  it('checks again on its own', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const fetch = stubFetch({ 'GET /health': () => jsonResponse(200, healthy) });
      render(<StatusCard pollMs={10_000} />);
      await screen.findByText('Operational');
      expect(fetch).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(fetch).toHaveBeenCalledTimes(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
