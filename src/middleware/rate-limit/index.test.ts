import { env } from 'cloudflare:test';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../app';
import { sha256Hex } from '../../registry/sha256';
import { captureLogs } from '../../../test/helpers/logs';
import { notFound, onError } from '../errors';
import { clientKey, rateLimit, type RateLimitEnv } from '.';

/** Counts keys like the binding does (fixed budget per key), and records what it was asked. */
function fakeLimiter(limit: number) {
  const counts = new Map<string, number>();
  const keys: string[] = [];
  const limiter: RateLimit = {
    limit: async ({ key }) => {
      keys.push(key);
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      return { success: n <= limit };
    },
  };
  return { limiter, keys };
}

function app() {
  const a = new Hono<{ Bindings: RateLimitEnv }>();
  a.use('*', rateLimit);
  a.post('/', (c) => c.json({ ok: true }));
  a.onError(onError);
  a.notFound(notFound);
  return a;
}

const ip = (addr: string, extra: Record<string, string> = {}) => ({ 'cf-connecting-ip': addr, ...extra });

async function expectLimited(res: Response) {
  expect(res.status).toBe(429);
  expect(res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
  const body = (await res.json()) as Record<string, any>;
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe('rate_limited');
  expect(body.error.message).toMatch(/Retry-After/);
}

describe('rateLimit middleware (fake limiter)', () => {
  const logs = captureLogs();
  it('counts each client IP apart and answers 429 with Retry-After in the error shape', async () => {
    const { limiter, keys } = fakeLimiter(2);
    const e: RateLimitEnv = { RATE_LIMIT_BINDING: 'L', RATE_LIMIT_RETRY_AFTER: '10', L: limiter };
    const a = app();
    const send = (headers: Record<string, string>) => a.request('/', { method: 'POST', headers }, e);
    expect((await send(ip('198.51.100.1'))).status).toBe(200);
    expect((await send(ip('198.51.100.1'))).status).toBe(200);
    const third = await send(ip('198.51.100.1'));
    await expectLimited(third);
    expect(third.headers.get('retry-after')).toBe('10');
    expect((await send(ip('198.51.100.2'))).status).toBe(200);
    expect(keys).toEqual(['ip:198.51.100.1', 'ip:198.51.100.1', 'ip:198.51.100.1', 'ip:198.51.100.2']);
  });

  it('refuses without Retry-After falling back to an unparsable var', async () => {
    const { limiter } = fakeLimiter(0);
    const res = await app().request('/', { method: 'POST', headers: ip('198.51.100.3') }, { RATE_LIMIT_BINDING: 'L', RATE_LIMIT_RETRY_AFTER: 'soon', L: limiter });
    await expectLimited(res);
    expect(res.headers.get('retry-after')).toBe('60');
  });

  it('keys a known API key by its hash (never the key itself); an unknown key counts as the IP', async () => {
    const known = await sha256Hex(new TextEncoder().encode('partner-secret'));
    const e: RateLimitEnv = { API_KEY_SHA256: `${'0'.repeat(64)}, ${known.toUpperCase()}` };
    expect(await clientKey(new Headers(ip('198.51.100.4', { 'x-api-key': 'partner-secret' })), e)).toBe(`key:${known}`);
    expect(await clientKey(new Headers(ip('198.51.100.4', { 'x-api-key': 'made-up' })), e)).toBe('ip:198.51.100.4');
    expect(await clientKey(new Headers(ip('198.51.100.4', { 'x-api-key': 'partner-secret' })), {})).toBe('ip:198.51.100.4');
    expect(await clientKey(new Headers(), {})).toBe('ip:local');
  });

  it('fails loudly when RATE_LIMIT_BINDING names no limiter, rather than serving unlimited', async () => {
    const res = await app().request('/', { method: 'POST', headers: ip('198.51.100.5') }, { RATE_LIMIT_BINDING: 'MISSING' });
    expect(res.status).toBe(500);
    expect(((await res.json()) as Record<string, any>).error.code).toBe('internal');
    expect(logs.of('unhandled_error').map((e) => e.message)).toEqual(['RATE_LIMIT_BINDING names MISSING, which is not a [[ratelimits]] binding']);
  });
});

// Through the whole worker in workerd, with miniflare's simulation of the binding.
describe('rate limiting with the Workers binding', () => {
  const worker = createApp();
  // The binding counts per fixed window (the simulation: Date.now() / period); a window that
  // rolls over mid-test would reset the count, so start well inside one.
  async function insideOneWindow(periodS: number) {
    const left = periodS * 1000 - (Date.now() % (periodS * 1000));
    if (left < 5000) await new Promise((r) => setTimeout(r, left + 100));
  }
  const call = (path: string, bindingEnv: Record<string, unknown>, headers: Record<string, string>, init: RequestInit = {}) =>
    worker.fetch(new Request(`http://localhost${path}`, { method: 'POST', ...init, headers }), { ...env, ...bindingEnv } as Env);

  it('a low limit (3 per 60 s): the 4th request is refused before its body is read; other clients, a known API key and /healthz are not', async () => {
    await insideOneWindow(60);
    const low = { RATE_LIMIT_BINDING: 'RATE_LIMITER_TEST' };
    for (let i = 0; i < 3; i++) expect((await call('/v1/age', low, ip('203.0.113.7'))).status).toBe(400); // empty body: through the limiter
    let read = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        read = true;
        controller.enqueue(new Uint8Array(1024));
        controller.close();
      },
    }, { highWaterMark: 0 }); // pulled only when someone reads
    const refused = await call('/v1/age', low, ip('203.0.113.7', { 'content-type': 'image/jpeg' }), { body, duplex: 'half' } as RequestInit);
    await expectLimited(refused);
    expect(refused.headers.get('retry-after')).toBe(env.RATE_LIMIT_RETRY_AFTER);
    expect(read).toBe(false);
    await expectLimited(await call('/v1/models', low, ip('203.0.113.7'), { method: 'GET' }));
    expect((await call('/v1/age', low, ip('203.0.113.8'))).status).toBe(400);
    expect((await call('/healthz', low, ip('203.0.113.7'), { method: 'GET' })).status).toBe(200);

    const key = 'test-partner-key';
    const keyed = { ...low, API_KEY_SHA256: await sha256Hex(new TextEncoder().encode(key)) };
    for (let i = 0; i < 3; i++) expect((await call('/v1/age', keyed, ip('203.0.113.7', { 'x-api-key': key }))).status).toBe(400);
    await expectLimited(await call('/v1/age', keyed, ip('203.0.113.9', { 'x-api-key': key })));
    await expectLimited(await call('/v1/age', keyed, ip('203.0.113.7', { 'x-api-key': 'another-made-up-key' })));
  });

  it('the deployed default (RATE_LIMITER in wrangler.toml) refuses a client past 60 requests a minute', async () => {
    await insideOneWindow(60);
    const deployed = { RATE_LIMIT_BINDING: 'RATE_LIMITER' };
    for (let i = 0; i < 60; i++) expect((await call('/v1/age', deployed, ip('203.0.113.20'))).status).toBe(400);
    await expectLimited(await call('/v1/age', deployed, ip('203.0.113.20')));
  });

  it('npm start and the test suite run under RATE_LIMITER_LOCAL, which a benchmark does not reach', async () => {
    expect(env.RATE_LIMIT_BINDING).toBe('RATE_LIMITER_LOCAL');
    for (let i = 0; i < 500; i++) {
      const res = await call('/v1/age', {}, ip('203.0.113.30'));
      if (res.status !== 400) throw new Error(`request ${i}: ${res.status}`);
    }
  });
});
