import { describe, expect, it } from 'vitest';
import { collectorOrigin, tracesUrl } from './collector';

describe('tracesUrl', () => {
  it('appends the traces path to a base URL only', () => {
    expect(tracesUrl(undefined)).toBeNull();
    expect(tracesUrl('  ')).toBeNull();
    expect(tracesUrl('http://localhost:4318/')).toBe('http://localhost:4318/v1/traces');
    expect(tracesUrl('https://otel.example/v1/traces')).toBe('https://otel.example/v1/traces');
  });
});

describe('collectorOrigin', () => {
  it('is the origin of an absolute endpoint', () => {
    expect(collectorOrigin('http://localhost:4318')).toBe('http://localhost:4318');
    expect(collectorOrigin('https://Otel.Example:443/base/')).toBe('https://otel.example');
  });

  it('is nothing without a collector or for a same-origin path', () => {
    expect(collectorOrigin(undefined)).toBeNull();
    expect(collectorOrigin('/otel')).toBeNull();
    expect(collectorOrigin('otel')).toBeNull();
  });

  it('refuses what no policy source can name', () => {
    expect(() => collectorOrigin('localhost:4318')).toThrow(/http\(s\) URL/);
    expect(() => collectorOrigin('file:///tmp/traces')).toThrow(/http\(s\) URL/);
  });
});
