// Tests run inside workerd (the same runtime as production) through @cloudflare/vitest-plugin.
import { readFile, stat } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';

const root = import.meta.dirname;
// Test-only file server: workerd cannot read the disk, so tests fetch the fixture model and
// sample photos through this service binding. Only these trees are reachable; `models` is the
// committed face detector (models/detectors), which the tests use as it ships.
const trees = {
  fixtures: resolve(root, 'test/fixtures'),
  models: resolve(root, 'models/detectors'),
  shared: resolve(root, '../shared/data'),
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
        // Re-read active.json on every request so hot-swap tests need no waiting.
        bindings: { ACTIVE_REFRESH_SECONDS: '0' },
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
