#!/usr/bin/env node
// Model registry operations on the R2 bucket bound as MODELS (docs/serving.md, "Models").
//
//   publish <dir>  upload models/<name>/<version>/ and make it active      [--remote] [--no-activate] [--tier T]
//   rollback       make the previously active version active again          [--remote] [--to name/version] [--tier T]
//
// --tier fast|accurate acts on that tier of active.json (`tiers[T]`, chosen per request with
// `POST /v1/age?model=T`) instead of its default (the top-level name and version); history.json
// entries carry the tier they were replaced in.
//   status         print active.json and history.json                       [--remote]
//   seed [dir]     copy a models/ tree (default: ./models) into local R2, as `npm start` does,
//                  with its detectors/ tree (the face detector; default: ./models/detectors)
//
// A version whose manifest says "kind": "face_detector" goes to the detector's registry
// (DETECTORS_PREFIX); rollback and status take --detector to act on that registry.
//   restore <name>/<version>  bring a released version that left models/ back from git: its tag
//                  model/<name>/<version>, else the last commit that held it; checksums checked
//                  [--out models-dir] [--publish [--tier T] [--remote]: then publish it as above]
//   tag            tag every version in models/ as model/<name>/<version> at HEAD (once per release)
//   wrap <onnx> --out models-dir --name N --version V --size S
//                  make a models/ tree (manifest with sha256 + active.json) around a bare ONNX
//                  export, e.g. an untrained architecture to measure serving cost (npm run bench -- --models DIR)
//
// Without --remote everything goes to the local R2 that `wrangler dev` serves (.wrangler/state,
// or --persist-to DIR), so it works offline. Deployed isolates pick up a new active.json within
// ACTIVE_REFRESH_SECONDS; no redeploy is needed.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { CONTRACT, LOCAL_STATE, ROOT, UsageError, parseOptions, detectorsPrefix, fail, listVersionDirs, modelsBucket, modelsPrefix, prefixFor, r2GetText, r2Put, readVersionDir, sha256File } from './lib.mjs';

const USAGE = `usage:
  npm run models:publish -- <models/<name>/<version>> [--tier fast|accurate] [--remote] [--no-activate] [--persist-to DIR]
  npm run models:rollback -- [--to <name>/<version>] [--tier fast|accurate] [--detector] [--remote] [--persist-to DIR]
  npm run models:status -- [--detector] [--remote] [--persist-to DIR]
  node scripts/models.mjs seed [models-dir] [--persist-to DIR]
  npm run models:restore -- <name>/<version> [--out models-dir] [--publish [--tier fast|accurate] [--remote]]
  node scripts/models.mjs tag
  node scripts/models.mjs wrap <model.onnx> --out <models-dir> --name N --version V --size S [--margin 0.4]`;

function parseArgs(argv) {
  const flag = { type: 'boolean' }, text = { type: 'string' };
  const { values, positionals, tokens } = parseOptions(
    argv,
    {
      remote: flag, local: flag, publish: flag, 'no-activate': flag, detector: flag, help: { type: 'boolean', short: 'h' },
      'persist-to': text, to: text, tier: text, out: text, name: text, version: text, size: text, margin: text,
    },
    { positionals: true },
  );
  if (values.tier !== undefined && !TIERS.includes(values.tier)) throw new UsageError(`--tier must be one of ${TIERS.join(', ')}`);
  // --remote and --local: the last one given wins.
  const target = tokens.filter((t) => t.kind === 'option' && (t.name === 'remote' || t.name === 'local')).pop();
  return {
    remote: target?.name === 'remote',
    activate: !values['no-activate'],
    positional: positionals,
    ...(values.publish && { publish: true }),
    ...(values.detector && { detector: true }),
    ...(values.help && { help: true }),
    ...(values['persist-to'] !== undefined && { persistTo: resolve(values['persist-to']) }),
    ...Object.fromEntries(['to', 'tier', 'out', 'name', 'version', 'size', 'margin'].filter((k) => values[k] !== undefined).map((k) => [k, values[k]])),
  };
}

/** The tiers a request can choose (contract/contract.json). */
export const TIERS = CONTRACT.tiers;

const pointer = (p) => (p ? `${p.name}/${p.version}` : '(none)');
const sameVersion = (a, b) => !!a && !!b && a.name === b.name && a.version === b.version;

async function readJson(target, key) {
  const text = await r2GetText(target, key);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${key} in R2 is not valid JSON`);
  }
}

async function readHistory(target, prefix = modelsPrefix()) {
  const h = await readJson(target, `${prefix}history.json`);
  return Array.isArray(h?.entries) ? h.entries : [];
}

/** The pointer `tier` of an active.json (the top-level one without a tier). */
export function pointerOf(active, tier) {
  const p = tier ? active?.tiers?.[tier] : active;
  return p && typeof p.name === 'string' && typeof p.version === 'string' ? { name: p.name, version: p.version } : undefined;
}

/** active.json with `p` as its default (no tier) or as `tiers[tier]`, everything else kept. */
export function withPointer(active, p, tier) {
  const { name, version, ...rest } = active ?? {};
  const next = tier ? { name, version, ...rest, tiers: { ...(active?.tiers ?? {}), [tier]: { name: p.name, version: p.version } } } : { name: p.name, version: p.version, ...rest };
  if (next.name === undefined) throw new UsageError(`active.json has no default version yet: publish one without --tier first`);
  return next;
}

async function writePointer(target, p, history, prefix = modelsPrefix(), tier = undefined, current = undefined) {
  // history first: a reader that sees the new active.json can always find the way back.
  await r2Put(target, `${prefix}history.json`, { text: JSON.stringify({ entries: history.slice(-50) }, null, 2), contentType: 'application/json' });
  await r2Put(target, `${prefix}active.json`, { text: JSON.stringify(withPointer(current, p, tier)), contentType: 'application/json' });
}

async function uploadVersion(target, dir, log = console.log) {
  const { manifest, files } = readVersionDir(dir);
  const base = `${prefixFor(manifest)}${manifest.name}/${manifest.version}/`;
  // Data files first and the manifest last, so a version never looks complete before it is.
  const ordered = [...files.filter((f) => f.role !== 'model'), ...files.filter((f) => f.role === 'model')];
  for (const f of ordered) {
    log(`  put ${base}${f.path} (${(f.bytes / 1e6).toFixed(2)} MB)`);
    await r2Put(target, base + f.path, { file: f.local, contentType: 'application/octet-stream' });
  }
  const card = join(dir, 'MODEL_CARD.md');
  if (existsSync(card)) await r2Put(target, `${base}MODEL_CARD.md`, { file: card, contentType: 'text/markdown' });
  log(`  put ${base}manifest.json`);
  await r2Put(target, `${base}manifest.json`, { file: join(dir, 'manifest.json'), contentType: 'application/json' });
  return manifest;
}

function where(target) {
  return target.remote ? `remote bucket ${modelsBucket()}` : `local R2 (${relative(ROOT, target.persistTo ?? LOCAL_STATE) || '.'})`;
}

async function publish(opts) {
  const dir = opts.positional[0];
  if (!dir) throw new UsageError('publish needs a version directory, e.g. models/al-resnet18-utkface/2026.11.27-1');
  console.log(`Publishing ${dir} to ${where(opts)}`);
  const manifest = await uploadVersion(opts, resolve(dir));
  const next = { name: manifest.name, version: manifest.version };
  if (!opts.activate) {
    console.log(`✔ uploaded ${pointer(next)} (not activated)`);
    return;
  }
  const prefix = prefixFor(manifest);
  const active = await readJson(opts, `${prefix}active.json`);
  const current = pointerOf(active, opts.tier);
  const history = await readHistory(opts, prefix);
  if (current && !sameVersion(current, next)) history.push({ ...current, ...(opts.tier ? { tier: opts.tier } : {}), until: new Date().toISOString() });
  await writePointer(opts, next, history, prefix, opts.tier, active);
  const undo = [opts.remote && '--remote', manifest.kind === 'face_detector' && '--detector', opts.tier && `--tier ${opts.tier}`].filter(Boolean).join(' ');
  console.log(`✔ active${opts.tier ? ` (${opts.tier} tier)` : ''}: ${pointer(next)} (was ${pointer(current)}); undo with: npm run models:rollback${undo ? ` -- ${undo}` : ''}`);
}

async function rollback(opts) {
  const prefix = opts.detector ? detectorsPrefix() : modelsPrefix();
  const active = await readJson(opts, `${prefix}active.json`);
  const current = pointerOf(active, opts.tier);
  const history = await readHistory(opts, prefix);
  const tierOf = (e) => e?.tier ?? undefined;
  let target;
  if (opts.to) {
    const [name, version, extra] = opts.to.split('/');
    if (!name || !version || extra) throw new UsageError('--to takes <name>/<version>');
    target = { name, version };
    if (current && !sameVersion(current, target)) history.push({ ...current, ...(opts.tier ? { tier: opts.tier } : {}), until: new Date().toISOString() });
  } else {
    // This tier's (or the default's) newest entry; entries equal to what is active are dropped.
    const last = () => history.findLastIndex((e) => tierOf(e) === opts.tier);
    while (last() >= 0 && sameVersion(history[last()], current)) history.splice(last(), 1);
    target = last() >= 0 ? history.splice(last(), 1)[0] : undefined;
    if (!target) throw new UsageError(`no earlier version${opts.tier ? ` of the ${opts.tier} tier` : ''} recorded in ${prefix}history.json; use --to <name>/<version>`);
  }
  const manifest = await r2GetText(opts, `${prefix}${target.name}/${target.version}/manifest.json`);
  if (manifest === undefined) throw new UsageError(`${pointer(target)} is not in ${where(opts)} (no manifest.json)`);
  await writePointer(opts, target, history, prefix, opts.tier, active);
  console.log(`✔ active: ${pointer(target)} (was ${pointer(current)}) in ${where(opts)}`);
}

async function status(opts) {
  const prefix = opts.detector ? detectorsPrefix() : modelsPrefix();
  const current = await readJson(opts, `${prefix}active.json`);
  const history = await readHistory(opts, prefix);
  const tiers = Object.entries(current?.tiers ?? {}).map(([t, p]) => `\n  ${`${t}:`.padEnd(9)}${pointer(p)}`).join('');
  const label = (e) => `${pointer(e)}${e.tier ? ` (${e.tier})` : ''}`;
  console.log(`${where(opts)}\n  active:  ${pointer(current)}${current?.default ? ` (the ${current.default} tier)` : ''}${tiers}\n  history: ${history.map(label).join(' <- ') || '(empty)'}`);
}

/**
 * Copies every version under `modelsDir` plus its active.json into local R2. A stamp file
 * remembers what was uploaded (by sha256), so restarts only upload what changed.
 */
export async function seed(modelsDir, persistTo = LOCAL_STATE, log = console.log) {
  const active = await seedTree(modelsDir, persistTo, log, modelsPrefix());
  // The face detector: the tree's own detectors/, else the one the repository ships.
  const own = join(modelsDir, 'detectors');
  const detectors = existsSync(join(own, 'active.json')) ? own : join(ROOT, 'models', 'detectors');
  log(`  face detector from ${relative(ROOT, detectors) || detectors}:`);
  await seedTree(detectors, persistTo, log, detectorsPrefix());
  return active;
}

async function seedTree(modelsDir, persistTo, log, prefix) {
  const dirs = listVersionDirs(modelsDir);
  const activePath = join(modelsDir, 'active.json');
  if (!dirs.length || !existsSync(activePath)) {
    throw new UsageError(
      `No model to serve: ${relative(ROOT, modelsDir) || modelsDir}/ needs active.json and at least one <name>/<version>/manifest.json ` +
        `(layout: docs/model-contract.md). The training workspace writes it (training/); for a quick try use the test fixture:\n` +
        `  npm start -- --models test/fixtures/model`,
    );
  }
  const active = JSON.parse(readFileSync(activePath, 'utf8'));
  const target = { remote: false, persistTo };
  mkdirSync(persistTo, { recursive: true });
  const stampPath = join(persistTo, 'age-edge-seed.json');
  // The default and every tier must be among the versions uploaded.
  const wanted = [active, ...Object.values(active.tiers ?? {})].map((p) => pointerOf(p));
  const seen = [];
  for (const dir of dirs) {
    const { manifest } = readVersionDir(dir);
    seen.push(manifest);
    const key = `${prefix}${manifest.name}/${manifest.version}`;
    const fingerprint = manifest.files.map((f) => f.sha256).join(',');
    const stamp = existsSync(stampPath) ? JSON.parse(readFileSync(stampPath, 'utf8')) : {};
    if (stamp[key] === fingerprint) {
      log(`  ${key}: already in local R2`);
      continue;
    }
    log(`  ${key}: uploading`);
    await uploadVersion(target, dir, () => {});
    stamp[key] = fingerprint;
    writeFileSync(stampPath, JSON.stringify(stamp, null, 2));
  }
  const missing = wanted.find((p) => !p || !seen.some((m) => sameVersion(m, p)));
  if (missing !== undefined) throw new UsageError(`${activePath} names ${pointer(missing)}, which is not under ${modelsDir}`);
  const { name, version, default: def, tiers } = active;
  await r2Put(target, `${prefix}active.json`, { text: JSON.stringify({ name, version, ...(def ? { default: def } : {}), ...(tiers ? { tiers } : {}) }), contentType: 'application/json' });
  log(`  active: ${pointer(active)}${Object.entries(tiers ?? {}).map(([t, p]) => `, ${t}: ${pointer(p)}`).join('')}`);
  return active;
}

/** A contract manifest around a bare .onnx (and its .onnx.data, if any): for ad-hoc serving tests. */
function wrap(opts) {
  const onnx = opts.positional[0];
  if (!onnx || !opts.out || !opts.name || !opts.version || !opts.size) throw new UsageError(`wrap needs a model and --out, --name, --version, --size\n${USAGE}`);
  const dir = join(resolve(opts.out), opts.name, opts.version);
  mkdirSync(dir, { recursive: true });
  const files = [];
  for (const [src, role] of [[resolve(onnx), 'model'], [`${resolve(onnx)}.data`, 'external_data']]) {
    if (!existsSync(src)) continue;
    const path = src.split('/').pop();
    copyFileSync(src, join(dir, path));
    files.push({ path, role, sha256: sha256File(src), bytes: statSync(src).size });
  }
  const manifest = {
    schema: 1, name: opts.name, version: opts.version, arch: 'unknown',
    input: { name: 'image', size: Number(opts.size), dtype: 'uint8', layout: 'NHWC', color: 'RGB' },
    outputs: CONTRACT.outputs,
    face_margin: Number(opts.margin ?? 0.4), ages: CONTRACT.class_ages,
    model: files[0].path, files,
    metrics: { note: `wrapped from ${onnx} by scripts/models.mjs wrap` },
    created: new Date().toISOString(),
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  writeFileSync(join(resolve(opts.out), 'active.json'), JSON.stringify({ name: opts.name, version: opts.version }) + '\n');
  readVersionDir(dir);
  console.log(`✔ ${relative(process.cwd(), dir)} (active in ${opts.out}/active.json)`);
}

const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const tagOf = (name, version) => `model/${name}/${version}`;

/**
 * The commit that holds models/<name>/<version>: its tag, or HEAD when the folder is there, or
 * the parent of the last commit that touched it (the one that removed it).
 */
export function commitHolding(name, version) {
  const path = `models/${name}/${version}/manifest.json`;
  try {
    return git('rev-parse', '--verify', '--quiet', `refs/tags/${tagOf(name, version)}^{commit}`);
  } catch { /* no tag: look in history */ }
  for (const rev of ['HEAD', (() => { try { return `${git('rev-list', '-1', 'HEAD', '--', path)}^`; } catch { return ''; } })()]) {
    if (!rev || rev === '^') continue;
    try {
      git('cat-file', '-e', `${rev}:${path}`);
      return git('rev-parse', rev);
    } catch { /* not in this commit */ }
  }
  throw new UsageError(`models/${name}/${version} is in no tag and no commit of this clone's history (a shallow clone? git fetch --unshallow --tags)`);
}

/** Writes models/<name>/<version>/ as `commit` holds it into `modelsDir`, checked against its manifest. */
export function restoreVersion(name, version, modelsDir = join(ROOT, 'models'), log = console.log) {
  const commit = commitHolding(name, version);
  const dir = join(modelsDir, name, version);
  mkdirSync(dir, { recursive: true });
  const listing = git('ls-tree', '--name-only', `${commit}:models/${name}/${version}`).split('\n').filter(Boolean);
  for (const file of listing) {
    const bytes = execFileSync('git', ['show', `${commit}:models/${name}/${version}/${file}`], { cwd: ROOT, maxBuffer: 1 << 30 });
    writeFileSync(join(dir, file), bytes);
  }
  readVersionDir(dir); // every file listed in the manifest is there, with its sha256
  log(`✔ ${relative(process.cwd(), dir) || dir}: ${listing.length} files from ${commit.slice(0, 12)}`);
  return dir;
}

async function restore(opts) {
  const [name, version, extra] = (opts.positional[0] ?? '').split('/');
  if (!name || !version || extra) throw new UsageError(`restore takes <name>/<version>\n${USAGE}`);
  const dir = restoreVersion(name, version, resolve(opts.out ?? join(ROOT, 'models')));
  if (opts.publish) await publish({ ...opts, positional: [dir] });
}

function tagAll() {
  for (const dir of listVersionDirs(join(ROOT, 'models'))) {
    const { manifest } = readVersionDir(dir);
    if (manifest.kind === 'face_detector') continue;
    const tag = tagOf(manifest.name, manifest.version);
    try {
      git('rev-parse', '--verify', '--quiet', `refs/tags/${tag}`);
      console.log(`  ${tag} exists`);
    } catch {
      git('tag', '-a', tag, '-m', `models/${manifest.name}/${manifest.version} as released`);
      console.log(`✔ ${tag}`);
    }
  }
}

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  const opts = parseArgs(rest);
  if (!command || opts.help) {
    console.log(USAGE);
    return;
  }
  if (command === 'publish') return publish(opts);
  if (command === 'rollback') return rollback(opts);
  if (command === 'status') return status(opts);
  if (command === 'wrap') return wrap(opts);
  if (command === 'restore') return restore(opts);
  if (command === 'tag') return tagAll();
  if (command === 'seed') {
    if (opts.remote) throw new UsageError('seed is for local R2 only; use publish --remote for the real bucket');
    await seed(resolve(opts.positional[0] ?? join(ROOT, 'models')), opts.persistTo);
    return;
  }
  throw new UsageError(`unknown command ${command}\n${USAGE}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => fail(err instanceof UsageError ? err.message : err.stack ?? String(err)));
}
