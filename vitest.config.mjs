// Tests run inside workerd (the same runtime as production) through @cloudflare/vitest-plugin.
import { readFile, stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

const root = import.meta.dirname;
// Test-only file server: workerd cannot read the disk, so tests fetch the fixture model and
// sample photos through this service binding. Only these trees are reachable; `models` holds
// the shipped default model (served through R2 by test/shipped-model.test.ts) and the committed
// face detector (models/detectors), which the tests use as they ship.
const trees = {
  fixtures: resolve(root, 'test/fixtures'),
  shared: resolve(root, '../shared/data'),
  models: resolve(root, 'models'),
};

async function serveFile(request) {
  const url = new URL(request.url);
  const [, tree, ...rest] = decodeURIComponent(url.pathname).split('/');
  const base = trees[tree];
  if (!base) return new Response('unknown tree', { status: 404 });
  const path = resolve(base, rest.join('/'));
  if (path !== base && !path.startsWith(base + sep)) return new Response('outside tree', { status: 403 });
  try {
    const info = await stat(path);
    if (!info.isFile()) return new Response('not a file', { status: 404 });
    return new Response(await readFile(path));
  } catch {
    return new Response('not found', { status: 404 });
  }
}

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        serviceBindings: { FIXTURES: serveFile },
        // Re-read active.json on every request so hot-swap tests need no waiting; the suite's
        // thousands of requests from one "client" run under the local limiter (as npm start).
        bindings: { ACTIVE_REFRESH_SECONDS: '0', RATE_LIMIT_BINDING: 'RATE_LIMITER_LOCAL', FUZZ_N: process.env.FUZZ_N ?? '300' },
        // A low limit for test/rate-limit.test.ts, which selects it by name.
        ratelimits: { RATE_LIMITER_TEST: { namespace_id: '9001', simple: { limit: 3, period: 60 } } },
      },
    }),
  ],
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // The machine has 2 cores; model loading in workerd is CPU-heavy.
    maxWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
