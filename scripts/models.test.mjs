// `npm run models:publish` / `models:rollback` against a local persisted R2 (wrangler r2 object
// --local --persist-to a temporary directory): no network, no Cloudflare account. Each step's
// effect is read back from R2 with `wrangler r2 object get`, not taken from the script's output.
// Run by scripts/test.sh: node --test scripts/models.test.mjs
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { ROOT, WRANGLER, modelsBucket } from './lib.mjs';

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'age-edge-models-test-'));
const persistTo = join(work, 'state');
const fixture = join(ROOT, 'test/fixtures/model/al-fixture/1');

/** A copy of the contract fixture as al-fixture/<version>. */
function versionDir(version, { tamper = false } = {}) {
  const dir = join(work, 'models', 'al-fixture', version);
  cpSync(fixture, dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, version }, null, 2));
  if (tamper) writeFileSync(join(dir, manifest.model), Buffer.concat([readFileSync(join(dir, manifest.model)), Buffer.from('x')]));
  return dir;
}

async function models(...args) {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, 'scripts/models.mjs'), ...args, '--persist-to', persistTo], { cwd: ROOT });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    return { code: err.code, out: `${err.stdout}${err.stderr}` };
  }
}

/** The object's bytes in the local R2, or undefined. */
async function object(key) {
  try {
    const { stdout } = await run(WRANGLER, ['r2', 'object', 'get', `${modelsBucket()}/${key}`, '--local', '--persist-to', persistTo, '--pipe'], { cwd: ROOT, encoding: 'buffer', maxBuffer: 1 << 26 });
    return stdout;
  } catch (err) {
    if (/not found|does not exist|NoSuchKey|404/i.test(`${err.stdout}${err.stderr}${err.message}`)) return undefined;
    throw err;
  }
}
const active = async () => JSON.parse((await object('models/active.json')) ?? 'null');
const history = async () => JSON.parse((await object('models/history.json')) ?? '{"entries":[]}').entries.map((e) => `${e.name}/${e.version}`);

let one, two;
before(() => {
  one = versionDir('1');
  two = versionDir('2');
});
after(() => rmSync(work, { recursive: true, force: true }));

test('publish uploads every file byte for byte and makes the version active', async () => {
  const r = await models('publish', one);
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(await active(), { name: 'al-fixture', version: '1' });
  const sha = createHash('sha256').update(await object('models/al-fixture/1/model.onnx')).digest('hex');
  assert.equal(sha, JSON.parse(readFileSync(join(one, 'manifest.json'), 'utf8')).files[0].sha256);
});

test('a second publish records the first in history.json', async () => {
  const r = await models('publish', two);
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(await active(), { name: 'al-fixture', version: '2' });
  assert.deepEqual(await history(), ['al-fixture/1']);
});

test('a version whose files do not match its manifest is refused before anything is uploaded', async () => {
  const r = await models('publish', versionDir('3', { tamper: true }));
  assert.notEqual(r.code, 0);
  assert.match(r.out, /bytes, the manifest says|does not match the manifest/);
  assert.match(r.out, /al-fixture\/3/);
  assert.deepEqual(await active(), { name: 'al-fixture', version: '2' });
});

test('rollback restores the previous version and pops it from history; with none left it refuses', async () => {
  const r = await models('rollback');
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(await active(), { name: 'al-fixture', version: '1' });
  assert.deepEqual(await history(), []);
  const again = await models('rollback');
  assert.notEqual(again.code, 0);
  assert.match(again.out, /no earlier version/);
  assert.deepEqual(await active(), { name: 'al-fixture', version: '1' });
});

test('rollback --to a version in R2 switches to it (and can be undone); one not in R2 is refused', async () => {
  const r = await models('rollback', '--to', 'al-fixture/2');
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(await active(), { name: 'al-fixture', version: '2' });
  assert.deepEqual(await history(), ['al-fixture/1']);
  const missing = await models('rollback', '--to', 'al-fixture/9');
  assert.notEqual(missing.code, 0);
  assert.match(missing.out, /not in local R2/);
  assert.deepEqual(await active(), { name: 'al-fixture', version: '2' });
});

test('publish --tier sets that tier of active.json and keeps the default; rollback --tier undoes only it', async () => {
  const three = versionDir('3');
  let r = await models('publish', one, '--tier', 'accurate');
  assert.equal(r.code, 0, r.out);
  r = await models('publish', two, '--tier', 'fast');
  assert.equal(r.code, 0, r.out);
  r = await models('publish', three, '--tier', 'fast');
  assert.equal(r.code, 0, r.out);
  const both = { name: 'al-fixture', version: '2', tiers: { accurate: { name: 'al-fixture', version: '1' }, fast: { name: 'al-fixture', version: '3' } } };
  assert.deepEqual(await active(), both);
  r = await models('rollback', '--tier', 'fast');
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(await active(), { ...both, tiers: { ...both.tiers, fast: { name: 'al-fixture', version: '2' } } });
  const again = await models('rollback', '--tier', 'fast');
  assert.notEqual(again.code, 0);
  assert.match(again.out, /no earlier version of the fast tier/);
  const status = await models('status');
  assert.match(status.out, /fast: +al-fixture\/2/);
  assert.notEqual((await models('publish', one, '--tier', 'turbo')).code, 0);
});

test('restore brings a version that left models/ back from git, checked, and can publish it', async (t) => {
  const { stdout } = await run('git', ['rev-parse', '--is-shallow-repository'], { cwd: ROOT });
  if (stdout.trim() === 'true') {
    t.skip('SKIPPED: a shallow clone has no history to restore from (git fetch --unshallow --tags)');
    return;
  }
  // Version 4 of the fast tier left models/ (issue #45); its tag or its last commit holds it.
  const out = join(work, 'restored');
  const r = await models('restore', 'al-resnet18-edge-fast-utkface/4', '--out', out, '--publish', '--no-activate');
  assert.equal(r.code, 0, r.out);
  const dir = join(out, 'al-resnet18-edge-fast-utkface', '4');
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  for (const f of manifest.files) {
    assert.equal(createHash('sha256').update(readFileSync(join(dir, f.path))).digest('hex'), f.sha256, f.path);
  }
  assert.ok(await object(`models/al-resnet18-edge-fast-utkface/4/${manifest.model}`), "published into the local R2");
  const missing = await models('restore', 'al-resnet18-edge-fast-utkface/999', '--out', out);
  assert.notEqual(missing.code, 0);
  assert.match(missing.out, /no tag and no commit/);
});
