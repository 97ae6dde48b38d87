// The worker's modules import one way: no module reaches itself through its imports (type-only
// imports included, since a circle of types is still a circle to read). Shared types live in leaf
// modules (src/image/types.ts, src/errors.ts, src/context.ts, src/registries.ts). The same holds
// for bench/ and scripts/, and scripts/ (the project's commands) never reaches into bench/.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './lib.mjs';

const SRC = join(ROOT, 'src');

/** The modules under dir that `keep` takes by file name (node_modules left out). */
function modules(dir, keep) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : modules(p, keep);
    return keep(e.name) ? [p] : [];
  });
}

const WORKER_MODULE = (name) => name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts');
// bench/ and scripts/: tests too (a test imports as well), .mjs and .ts alike.
const SCRIPT_MODULE = (name) => /\.(mjs|ts)$/.test(name) && !name.endsWith('.d.ts');

/** The modules a file imports, re-exports from or imports dynamically, relative ones only,
 *  resolved to files (an extensionless specifier to its .ts, as the bundler and the hooks do). */
export function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/^\s*(?:import|export)\b[^'";]*?\bfrom\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm)]
    .map((m) => m[1] ?? m[2]);
  return specs
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file), s))
    .map((p) => [p, `${p}.ts`, join(p, 'index.ts')].find((c) => /\.(mjs|ts)$/.test(c) && existsSync(c)))
    .filter(Boolean);
}

/** Every circle in an import graph (module -> the modules it imports), each as the modules around it. */
export function importCycles(graph) {
  const state = new Map(); // undefined: unseen, 1: on the path, 2: done
  const path = [];
  const cycles = [];
  const visit = (f) => {
    state.set(f, 1);
    path.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 1) cycles.push([...path.slice(path.indexOf(g)), g]);
      else if (!state.get(g)) visit(g);
    }
    path.pop();
    state.set(f, 2);
  };
  for (const f of graph.keys()) if (!state.get(f)) visit(f);
  return cycles;
}

test('src/ has no circular imports', () => {
  const files = modules(SRC, WORKER_MODULE);
  assert.ok(files.length > 20, `found only ${files.length} modules under src/`);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  assert.ok(graph.get(join(SRC, 'app.ts')).includes(join(SRC, 'routes', 'age.ts')), 'the import reader misses app.ts -> routes/age.ts');
  const cycles = importCycles(graph).map((c) => c.map((f) => relative(ROOT, f)).join(' -> '));
  assert.deepEqual(cycles, []);
});

test('bench/ and scripts/ have no circular imports', () => {
  const files = [...modules(join(ROOT, 'bench'), SCRIPT_MODULE), ...modules(join(ROOT, 'scripts'), SCRIPT_MODULE)];
  assert.ok(files.length > 20, `found only ${files.length} modules under bench/ and scripts/`);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  assert.ok(graph.get(join(ROOT, 'bench', 'peers.mjs')).includes(join(ROOT, 'bench', 'lib', 'worker.mjs')),
    'the import reader misses bench/peers.mjs -> bench/lib/worker.mjs');
  const cycles = importCycles(graph).map((c) => c.map((f) => relative(ROOT, f)).join(' -> '));
  assert.deepEqual(cycles, []);
});

test('scripts/ does not import bench/ (the project commands stand without the benchmarks)', () => {
  const scripts = modules(join(ROOT, 'scripts'), SCRIPT_MODULE);
  const reaching = scripts.flatMap((f) => importsOf(f).filter((g) => g.startsWith(join(ROOT, 'bench') + '/'))
    .map((g) => `${relative(ROOT, f)} -> ${relative(ROOT, g)}`));
  assert.deepEqual(reaching, []);
});

test('the cycle finder finds a circle through a type import', () => {
  const graph = new Map([['app', ['routes', 'schemas']], ['routes', ['schemas', 'app']], ['schemas', []]]);
  assert.deepEqual(importCycles(graph), [['app', 'routes', 'app']]);
  assert.deepEqual(importCycles(new Map([['a', ['b']], ['b', []]])), []);
});
