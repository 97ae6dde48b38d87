// wrangler dev (local workerd) on the bench entry (scripts/bench/worker.ts: the app plus
// GET /_bench/infer) with a fresh local R2 seeded from a models/ tree. Used by `npm run bench`
// and `npm run bench:peers`.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, WRANGLER, readVersionDir } from '../lib.mjs';
import { seed } from '../models.mjs';

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

/** Starts the server and waits for /healthz; `stop()` ends it and removes its R2 state. */
export async function startBenchServer(modelsDir) {
  const persist = mkdtempSync(join(tmpdir(), 'age-edge-bench-'));
  const port = await freePort();
  const active = await seed(modelsDir, persist, () => {});
  const { manifest } = readVersionDir(join(modelsDir, active.name, active.version));
  const child = spawn(
    WRANGLER,
    ['dev', 'scripts/bench/worker.ts', '--local', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persist,
      '--var', 'ACTIVE_REFRESH_SECONDS:3600', '--show-interactive-dev-session=false', '--log-level', 'warn'],
    { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const stop = async () => {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {}
    await new Promise((r) => setTimeout(r, 500));
    rmSync(persist, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${port}`;
  try {
    const started = performance.now();
    for (;;) {
      if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${log}`);
      if (performance.now() - started > 120_000) throw new Error(`wrangler dev did not answer within 120 s:\n${log}`);
      try {
        if ((await fetch(`${base}/healthz`)).ok) break;
      } catch {}
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, active, manifest, stop };
}
