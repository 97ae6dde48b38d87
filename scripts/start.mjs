#!/usr/bin/env node
// `npm start`: seed the local R2 from models/ (or --models DIR) and serve the API with
// `wrangler dev`, entirely offline. Extra arguments after `--` go to wrangler dev.
//
//   npm start                                  # models/ (the default model, and the face detector of models/detectors)
//   npm start -- --models test/fixtures/model  # the small contract fixture
//   npm start -- --port 9000
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LOCAL_STATE, ROOT, UsageError, WRANGLER, fail } from './lib.mjs';
import { seed } from './models.mjs';

/** Our options; every other argument, in its order, goes on to wrangler dev. */
function readOptions(argv) {
  const known = { models: { type: 'string' }, port: { type: 'string' }, ip: { type: 'string' }, 'persist-to': { type: 'string' } };
  const { values, tokens } = parseArgs({ args: argv, options: known, strict: false, allowPositionals: true, tokens: true });
  const rest = tokens
    .filter((t) => t.kind !== 'option' || !(t.name in known))
    .map((t) => (t.kind === 'option' ? `${t.rawName}${t.inlineValue ? `=${t.value}` : ''}` : t.kind === 'option-terminator' ? '--' : t.value));
  return {
    models: values.models === undefined ? join(ROOT, 'models') : resolve(values.models),
    port: values.port ?? '8787',
    ip: values.ip ?? '127.0.0.1',
    persistTo: values['persist-to'] === undefined ? LOCAL_STATE : resolve(values['persist-to']),
    rest,
  };
}

async function main() {
  const opts = readOptions(process.argv.slice(2));
  console.log(`Seeding local R2 from ${opts.models}`);
  const active = await seed(opts.models, opts.persistTo);
  // wrangler takes a few seconds to listen: point at its own "Ready on" line so a
  // newcomer's first curl does not meet a refused connection.
  console.log(`\nStarting ${active.name}/${active.version} on http://${opts.ip === '0.0.0.0' ? 'localhost' : opts.ip}:${opts.port}`);
  console.log(`Once wrangler prints "Ready on", try:`);
  console.log(`  curl -s http://localhost:${opts.port}/healthz`);
  console.log(`  curl -s -H 'content-type: image/jpeg' --data-binary @photo.jpg http://localhost:${opts.port}/v1/age   # every face in the photo`);
  console.log(`  curl -s -H 'content-type: image/jpeg' --data-binary @chip.jpg 'http://localhost:${opts.port}/v1/age?crop=image'   # an already cropped face\n`);
  const child = spawn(
    WRANGLER,
    // The local limiter (wrangler.toml): one user sending benchmarks must not meet the deployed
    // per-client limit. `npm start -- --var RATE_LIMIT_BINDING:RATE_LIMITER` tries the deployed one.
    ['dev', '--local', '--ip', opts.ip, '--port', opts.port, '--persist-to', opts.persistTo, '--show-interactive-dev-session=false',
      '--var', 'RATE_LIMIT_BINDING:RATE_LIMITER_LOCAL', ...opts.rest],
    { cwd: ROOT, stdio: 'inherit', env: process.env },
  );
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
}

main().catch((err) => fail(err instanceof UsageError ? err.message : err.stack ?? String(err)));
