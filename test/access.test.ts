import { env } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app';
import { encodeJpeg, makeRgb, pattern } from './helpers/images';
import { captureLogs, expectOnlyUnnamedTiers } from './helpers/logs';
import { FIXTURE, json, publishDetector, publishFixture, worker } from './helpers/worker';

const photo = encodeJpeg(makeRgb(64, 64, pattern));

beforeAll(async () => {
  await publishFixture(FIXTURE.version);
  await publishDetector();
  await env.MODELS.put('models/history.json', JSON.stringify({ entries: [{ name: FIXTURE.name, version: '0' }] }));
});

/** Every object in the bucket with its etag: what "state" means for this Worker. */
async function bucketState(): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.MODELS.list(cursor ? { cursor } : {});
    for (const o of page.objects) out.push(`${o.key} ${o.etag} ${o.size}`);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return out.sort();
}

describe('the public API only reads', () => {
  const logs = captureLogs();
  const paths = ['/v1/age', '/v1/models', '/healthz', '/', '/v1', '/v1/models/active', '/v1/models/al-fixture/1', '/admin', '/metrics', '/v1/age/../models'];
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

  it('no method on any route changes the bucket or the model being served', async () => {
    const before = await bucketState();
    expect(before.some((k) => k.startsWith('models/active.json '))).toBe(true);
    const served = (await json(await worker.fetch('http://localhost/v1/models'))).active;
    // A body that would switch models, were any route to take one.
    const takeover = JSON.stringify({ name: FIXTURE.name, version: 'evil' });
    const statuses: string[] = [];
    for (const path of paths)
      for (const method of methods)
        for (const body of method === 'GET' || method === 'HEAD' ? [null] : [photo, takeover]) {
          const res = await worker.fetch(`http://localhost${path}`, {
            method,
            body,
            headers: { 'content-type': typeof body === 'string' ? 'application/json' : 'image/jpeg', origin: 'https://app.example', 'access-control-request-method': 'PUT' },
          });
          statuses.push(`${method} ${path} ${res.status}`);
          expect(res.status, `${method} ${path}`).toBeLessThan(500);
          if (res.status >= 400 && method !== 'HEAD') {
            const b = (await res.json()) as Record<string, any>;
            expect(Object.keys(b), `${method} ${path}`).toEqual(['error']);
          } else await res.arrayBuffer();
        }
    expect(await bucketState()).toEqual(before);
    expect((await json(await worker.fetch('http://localhost/v1/models'))).active).toEqual(served);
    // Only the reading routes answer 2xx: nothing accepts PUT, PATCH or DELETE.
    expect(statuses.filter((s) => / 2\d\d$/.test(s) && /^(PUT|PATCH|DELETE) /.test(s))).toEqual([]);
    expectOnlyUnnamedTiers(logs);
  });
});

describe('CORS allow-list (CORS_ORIGIN)', () => {
  const app = createApp();
  const call = (path: string, method: string, origin: string, corsOrigin: string) =>
    app.fetch(
      new Request(`http://localhost${path}`, {
        method,
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      }),
      { ...env, CORS_ORIGIN: corsOrigin } as Env,
    );
  const list = 'https://a.example, https://b.example';

  it('echoes an origin on the list, in preflights and answers', async () => {
    const pre = await call('/v1/age', 'OPTIONS', 'https://a.example', list);
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://a.example');
    expect(pre.headers.get('vary')).toMatch(/origin/i);
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    const res = await call('/healthz', 'GET', 'https://b.example', list);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://b.example');
  });

  it('gives an origin off the list (or a near miss) no Access-Control-Allow-Origin', async () => {
    for (const origin of ['https://evil.example', 'https://a.example.evil.example', 'http://a.example', 'https://A.example.', 'null', '*']) {
      for (const [path, method] of [['/v1/age', 'OPTIONS'], ['/healthz', 'GET']] as const) {
        const res = await call(path, method, origin, list);
        expect(res.headers.get('access-control-allow-origin'), `${method} ${path} from ${origin}`).toBeNull();
      }
    }
  });

  it("'*' (the default) allows any origin", async () => {
    const res = await call('/healthz', 'GET', 'https://anyone.example', '*');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });
});
