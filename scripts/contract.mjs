#!/usr/bin/env node
// Writes contract/manifest.schema.json: the manifest's zod schema (src/registry/manifest.ts) as a
// JSON Schema, which the Python release validates every manifest it writes against
// (training/contract.py). Run it after changing the schema; src/registry/manifest.test.ts fails
// while the committed file is not current.
//
//   node scripts/contract.mjs
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { ROOT } from './lib.mjs';

export const SCHEMA_PATH = join(ROOT, 'contract', 'manifest.schema.json');

// The schema is TypeScript that imports JSON: esbuild bundles it (as wrangler does) to run here.
const bundle = await build({ entryPoints: [join(ROOT, 'src', 'registry', 'manifest.ts')], bundle: true, format: 'esm', platform: 'node', write: false, logLevel: 'error' });
const { manifestJsonSchema } = await import(`data:text/javascript;base64,${Buffer.from(bundle.outputFiles[0].text).toString('base64')}`);
writeFileSync(SCHEMA_PATH, `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`);
console.log(`wrote ${relative(ROOT, SCHEMA_PATH)}`);
