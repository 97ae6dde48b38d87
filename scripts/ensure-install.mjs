#!/usr/bin/env node
// Runs before `npm start` / `npm test` / `npm run bench`: installs the locked dependencies on a
// fresh clone (or after package-lock.json changed), including Node 22 from the `node` package,
// which wrangler >= 4.87 requires. Works on the system Node (>= 20).
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './lib.mjs';

const marker = join(ROOT, 'node_modules', '.package-lock.json');
const lock = join(ROOT, 'package-lock.json');
const needed = ['wrangler', 'vitest', 'node'].map((b) => join(ROOT, 'node_modules', '.bin', b));
const stale = !existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs || needed.some((p) => !existsSync(p));

if (stale) {
  console.log('Installing dependencies (npm ci)…');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const v = spawnSync(join(ROOT, 'node_modules', '.bin', 'node'), ['--version'], { encoding: 'utf8' });
const [major, minor] = (v.stdout ?? '').replace(/^v/, '').split('.').map(Number);
if (!(major > 22 || (major === 22 && minor >= 12))) {
  console.error(`node_modules/.bin/node is ${v.stdout?.trim() || 'missing'}; wrangler needs >= 22.12. Run: rm -rf node_modules && npm ci`);
  process.exit(1);
}
