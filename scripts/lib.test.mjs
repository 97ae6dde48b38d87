// The option reading every script shares (scripts/lib.mjs parseOptions): node:util's parseArgs
// with the scripts' own usage errors. Run by scripts/test.sh (node --test).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError, parseOptions } from './lib.mjs';

const OPTIONS = { n: { type: 'string' }, 'no-cost': { type: 'boolean' }, model: { type: 'string', multiple: true } };

test('reads values, repeated options and flags as parseArgs does', () => {
  const { values } = parseOptions(['--n', '5', '--model', 'a', '--model=b', '--no-cost'], OPTIONS);
  assert.deepEqual({ ...values }, { n: '5', model: ['a', 'b'], 'no-cost': true });
  assert.deepEqual(parseOptions(['x', '--n', '1', 'y'], OPTIONS, { positionals: true }).positionals, ['x', 'y']);
});

test('an unknown option, or an argument where none is taken, is "unknown option X", as the hand-written loops said', () => {
  assert.throws(() => parseOptions(['--bogus'], OPTIONS), new UsageError('unknown option --bogus'));
  assert.throws(() => parseOptions(['stray'], OPTIONS), new UsageError('unknown option stray'));
  assert.throws(() => parseOptions(['--x'], OPTIONS, { positionals: true, unknown: (a) => `unknown argument ${a}` }), new UsageError('unknown argument --x'));
  assert.throws(() => parseOptions(['--n'], OPTIONS), (err) => err instanceof UsageError && /--n/.test(err.message));
});
