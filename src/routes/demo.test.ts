import { OpenAPIHono } from '@hono/zod-openapi';
import { describe, expect, it } from 'vitest';
import type { AppEnv } from '../context';
import { withConfig } from '../middleware/config';
import { demoRoutes } from './demo';
import { docsRoutes } from './docs';

const app = () => new OpenAPIHono<AppEnv>().use(withConfig).route('/', demoRoutes()).route('/docs', docsRoutes());

describe('GET /', () => {
  it('serves the demo page with the deployment pixel limit and a closed CSP', async () => {
    const res = await app().request('/', {}, { MAX_PIXELS: '1234567' } as Env);
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
    const res = await app().request('/', { method: 'POST' }, {} as Env);
    expect(res.status).toBe(405);
  });
});

describe('GET /docs', () => {
  it('serves the page that renders /v1/openapi.json, with nothing from another origin', async () => {
    const res = await app().request('/docs', {}, {} as Env);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("connect-src 'self'");
    const html = await res.text();
    expect(html).toContain("fetch('/v1/openapi.json')");
    expect(html).not.toMatch(/(src|href)=["']https?:/);
  });

  it('answers other methods with 405', async () => {
    expect((await app().request('/docs', { method: 'POST' }, {} as Env)).status).toBe(405);
  });
});
