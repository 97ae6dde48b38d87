import { describe, expect, it } from 'vitest';
import { demoRoutes } from './demo';

describe('GET /', () => {
  it('serves the demo page with the deployment pixel limit and a closed CSP', async () => {
    const res = await demoRoutes().request('/', {}, { MAX_PIXELS: '1234567' } as Env);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    const html = await res.text();
    expect(html).toContain("Number('1234567')");
    expect(html).not.toContain('__MAX_PIXELS__');
    // Nothing is loaded from another origin.
    expect(html).not.toMatch(/(src|href)=["']https?:/);
  });

  it('answers other methods with 405', async () => {
    const res = await demoRoutes().request('/', { method: 'POST' }, {} as Env);
    expect(res.status).toBe(405);
  });
});
