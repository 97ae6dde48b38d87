import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApp } from '../src/app';
import { encodeJpeg, makeRgb, pattern } from './helpers/images';
import { worker } from './helpers/worker';

const photo = encodeJpeg(makeRgb(64, 64, pattern));

afterEach(() => vi.restoreAllMocks());

describe('request ids (hono/request-id)', () => {
  it('every answer has X-Request-Id, and an error body names the same id', async () => {
    expect((await worker.fetch('http://localhost/healthz')).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const res = await worker.fetch('http://localhost/v1/age?top_k=nope', { method: 'POST', body: photo, headers: { 'content-type': 'image/jpeg' } });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { request_id: string } };
    expect(body.error.request_id).toBe(res.headers.get('x-request-id'));
  });

  it("keeps a client's own id when it is a plain token, and replaces anything else", async () => {
    const own = await worker.fetch('http://localhost/v1/nothing', { headers: { 'x-request-id': 'app-1234_abc' } });
    expect(own.headers.get('x-request-id')).toBe('app-1234_abc');
    expect(((await own.json()) as { error: { request_id: string } }).error.request_id).toBe('app-1234_abc');
    const odd = await worker.fetch('http://localhost/v1/nothing', { headers: { 'x-request-id': '<script>' } });
    expect(odd.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('the log line of an unexpected error carries the id of its request', async () => {
    const logged: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((line: string) => void logged.push(line));
    const app = createApp(() => {
      throw new Error('registries broke');
    });
    const res = await app.request('/healthz', {}, env);
    expect(res.status).toBe(500);
    const id = res.headers.get('x-request-id');
    expect(logged.map((l) => JSON.parse(l))).toEqual([expect.objectContaining({ event: 'unhandled_error', request_id: id })]);
  });
});

describe('the vars are parsed once per request', () => {
  it('readConfig runs once, however many middlewares and handlers read the config', async () => {
    let reads = 0;
    // MAX_TOP_K is read once by each readConfig call.
    const counted = new Proxy(env, {
      get(target, key, receiver) {
        if (key === 'MAX_TOP_K') reads++;
        return Reflect.get(target, key, receiver);
      },
    });
    const app = createApp();
    // Through CORS, the body limit, the image body and the age route (which refuses top_k=99).
    const res = await app.request('/v1/age?top_k=99', { method: 'POST', body: photo, headers: { 'content-type': 'image/jpeg', origin: 'https://a.example' } }, counted);
    expect(res.status).toBe(400);
    expect(reads).toBe(1);
  });
});
