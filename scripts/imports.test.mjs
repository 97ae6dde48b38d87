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

function modules(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return modules(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The src/ modules a file imports or re-exports from. */
export function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/^\s*(?:import|export)\b[^'";]*?\bfrom\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]);
  return specs
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file), s))
    .map((p) => [p, `${p}.ts`, join(p, 'index.ts')].find((c) => c.endsWith('.ts') && existsSync(c)))
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
  const files = modules(SRC);
  assert.ok(files.length > 20, `found only ${files.length} modules under src/`);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  assert.ok(graph.get(join(SRC, 'app.ts')).includes(join(SRC, 'routes', 'age.ts')), 'the import reader misses app.ts -> routes/age.ts');
  const cycles = importCycles(graph).map((c) => c.map((f) => relative(ROOT, f)).join(' -> '));
  assert.deepEqual(cycles, []);
});

/** The .mjs and .ts modules under a folder (tests included: a test imports too), node_modules left out. */
function scriptModules(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : scriptModules(p);
    return /\.(mjs|ts)$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative imports of an .mjs or .ts file, resolved to files (extensionless ones to .ts, as the hooks do). */
function scriptImportsOf(file) {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/^\s*(?:import|export)\b[^'";]*?\bfrom\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm)]
    .map((m) => m[1] ?? m[2]);
  return specs
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file), s))
    .map((p) => [p, `${p}.ts`, join(p, 'index.ts')].find((c) => /\.(mjs|ts)$/.test(c) && existsSync(c)))
    .filter(Boolean);
}

test('bench/ and scripts/ have no circular imports', () => {
  const files = [...scriptModules(join(ROOT, 'bench')), ...scriptModules(join(ROOT, 'scripts'))];
  assert.ok(files.length > 20, `found only ${files.length} modules under bench/ and scripts/`);
  const graph = new Map(files.map((f) => [f, scriptImportsOf(f)]));
  assert.ok(graph.get(join(ROOT, 'bench', 'peers.mjs')).includes(join(ROOT, 'bench', 'lib', 'worker.mjs')),
    'the import reader misses bench/peers.mjs -> bench/lib/worker.mjs');
  const cycles = importCycles(graph).map((c) => c.map((f) => relative(ROOT, f)).join(' -> '));
  assert.deepEqual(cycles, []);
});

test('scripts/ does not import bench/ (the project commands stand without the benchmarks)', () => {
  const scripts = scriptModules(join(ROOT, 'scripts'));
  const reaching = scripts.flatMap((f) => scriptImportsOf(f).filter((g) => g.startsWith(join(ROOT, 'bench') + '/'))
    .map((g) => `${relative(ROOT, f)} -> ${relative(ROOT, g)}`));
  assert.deepEqual(reaching, []);
});

test('the cycle finder finds a circle through a type import', () => {
  const graph = new Map([['app', ['routes', 'schemas']], ['routes', ['schemas', 'app']], ['schemas', []]]);
  assert.deepEqual(importCycles(graph), [['app', 'routes', 'app']]);
  assert.deepEqual(importCycles(new Map([['a', ['b']], ['b', []]])), []);
});
