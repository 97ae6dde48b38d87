// npm run example -- photo.jpg [--url http://127.0.0.1:8787] [--crop] [--box x,y,w,h] [--model fast|accurate]
// Sends the photo to the API (AGE_EDGE_URL or --url; `npm start`'s address by default) and
// prints each face: its box, age, 80% range, age group and capture quality (with what to fix).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ModelTier } from '../src/registry/manifest';
import { AgeEdgeError, createClient, DEFAULT_BASE_URL } from './index.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { url: { type: 'string' }, box: { type: 'string' }, crop: { type: 'boolean' }, model: { type: 'string' } },
});
const [file] = positionals;
if (!file) {
  console.error('usage: npm run example -- photo.jpg [--url URL] [--box x,y,w,h] [--crop] [--model fast|accurate]');
  process.exit(2);
}
const baseUrl = values.url ?? process.env.AGE_EDGE_URL ?? DEFAULT_BASE_URL;
const client = createClient(baseUrl);
try {
  const result = await client.estimateAge(new Uint8Array(readFileSync(file)), { box: values.box, crop: values.crop ? 'image' : undefined, model: values.model as ModelTier | undefined });
  console.log(`${file}: ${result.image.width}x${result.image.height}, ${result.faces.length} face(s), model ${result.model.name}/${result.model.version}${result.model.tier ? ` (${result.model.tier})` : ''}`);
  result.faces.forEach((f, i) => {
    const b = f.box;
    console.log(
      `face ${i + 1}: box ${b.x},${b.y} ${b.w}x${b.h}  age ${f.age.toFixed(1)}  80% range ${f.range.low.toFixed(1)}–${f.range.high.toFixed(1)}  ` +
        `group ${f.group.label} (${Math.round(f.group.probability * 100)}%)  quality ${Math.round(f.quality.score * 100)}%` +
        (f.quality.reasons.length ? ` (${f.quality.reasons.join('; ')})` : ''),
    );
  });
} catch (err) {
  if (err instanceof AgeEdgeError) console.error(`${baseUrl}: ${err.status} ${err.code}: ${err.message} (request ${err.requestId})`);
  else console.error(`${baseUrl}: ${(err as Error).message}`);
  process.exit(1);
}
