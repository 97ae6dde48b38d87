#!/usr/bin/env node
// `npm run load`: concurrent clients against the worker in local workerd (wrangler dev on
// 127.0.0.1 only, a fresh local R2 seeded with a model), bounded in requests and seconds.
//
// 1. sequential reference: each photo once, one at a time;
// 2. burst: --clients concurrent clients send --requests requests in all; every one must be a
//    200 whose body is byte-identical to the sequential answer for the same photo;
// 3. sustained: the same clients for --seconds, wasm heap and process memory sampled every
//    --sample seconds, to show no leak.
// Prints throughput and p50/p95/p99 for each phase (docs/reliability.md).
//
//   npm run load                                   # 200 clients, 2,000 requests, 60 s sustained, the fixture
//   npm run load -- --models models --seconds 300 --json load.json
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ROOT, startLocalWorker, treeRssMiB, UsageError, fail, parseOptions } from '../scripts/lib.mjs';
import { seed as seedR2 } from '../scripts/models.mjs';
import { leaksImage, makeSeeds } from '../test/fuzz/cases.ts';

function parseArgs(argv) {
  const { values } = parseOptions(argv, {
    clients: { type: 'string' }, requests: { type: 'string' }, seconds: { type: 'string' }, sample: { type: 'string' },
    photos: { type: 'string' }, models: { type: 'string' }, json: { type: 'string' },
  });
  const o = {
    clients: Number(values.clients ?? 200),
    requests: Number(values.requests ?? 2000),
    seconds: Number(values.seconds ?? 60),
    sample: Number(values.sample ?? 10),
    models: values.models === undefined ? join(ROOT, 'test/fixtures/model') : resolve(values.models),
    json: values.json === undefined ? undefined : resolve(values.json),
    photos: Number(values.photos ?? 8),
  };
  // Bounded whatever the options say: a load test is not a denial of service on the machine.
  if (!(o.clients >= 1 && o.clients <= 1000 && o.requests <= 100_000 && o.seconds <= 1800)) throw new UsageError('at most 1000 clients, 100,000 requests, 1800 s');
  return o;
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN;
};

function photos(n) {
  const root = join(ROOT, '..', 'shared', 'data', 'utkface');
  if (existsSync(join(root, 'labels.csv'))) {
    const names = readFileSync(join(root, 'labels.csv'), 'utf8').split(/\r?\n/).filter((l) => l.endsWith(',test')).slice(0, n).map((l) => l.split(',')[0]);
    return { source: `${names.length} UTKFace test faces`, bytes: names.map((f) => readFileSync(join(root, 'images', f))) };
  }
  console.warn('../shared/data/utkface not found: generated photos');
  return { source: 'generated photos', bytes: makeSeeds().jpegs };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const { base, seeded: active, child, lines, stop } = await startLocalWorker({
    seedInto: (persist) => seedR2(o.models, persist, () => {}), prefix: 'age-edge-load-',
  });
  try {
    const { source, bytes } = photos(o.photos);
    const post = async (i) => {
      const t = performance.now();
      const res = await fetch(`${base}/v1/age`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: bytes[i] });
      const text = await res.text();
      return { status: res.status, text, ms: performance.now() - t };
    };
    const reference = [];
    for (let i = 0; i < bytes.length; i++) {
      const r = await post(i);
      if (r.status !== 200) throw new Error(`sequential reference for photo ${i}: ${r.status} ${r.text}`);
      reference.push(r.text);
    }
    const memory = [];
    const sampleMemory = async (phase, at) => {
      const heap = JSON.parse(await (await fetch(`${base}/v1/models`)).text()).wasm_heap_bytes;
      memory.push({ phase, at_s: Math.round(at), wasmHeapMiB: +(heap / 2 ** 20).toFixed(1), ...treeRssMiB(child.pid) });
    };
    await sampleMemory('start', 0);
    const failures = [];
    const check = (i, r) => {
      if (r.status !== 200) failures.push(`photo ${i}: ${r.status} ${r.text.slice(0, 120)}`);
      else if (r.text !== reference[i]) failures.push(`photo ${i}: answer differs from the sequential one`);
    };

    // Burst: o.requests in all, o.clients at a time.
    let next = 0;
    const burstMs = [];
    const b0 = performance.now();
    await Promise.all(Array.from({ length: o.clients }, async () => {
      for (;;) {
        const k = next++;
        if (k >= o.requests) return;
        const i = k % bytes.length;
        try {
          const r = await post(i);
          burstMs.push(r.ms);
          check(i, r);
        } catch (err) {
          failures.push(`photo ${i}: ${err.cause?.code ?? err.message}`);
        }
      }
    }));
    const burstS = (performance.now() - b0) / 1000;
    await sampleMemory('after burst', burstS);

    // Sustained: the same clients for o.seconds.
    const sustainedMs = [];
    const s0 = performance.now();
    const end = s0 + o.seconds * 1000;
    let k = 0;
    const sampler = setInterval(() => void sampleMemory('sustained', (performance.now() - s0) / 1000), o.sample * 1000);
    await Promise.all(Array.from({ length: o.clients }, async () => {
      while (performance.now() < end) {
        const i = k++ % bytes.length;
        try {
          const r = await post(i);
          sustainedMs.push(r.ms);
          check(i, r);
        } catch (err) {
          failures.push(`photo ${i}: ${err.cause?.code ?? err.message}`);
        }
      }
    }));
    clearInterval(sampler);
    const sustainedS = (performance.now() - s0) / 1000;
    await sampleMemory('end', sustainedS);
    for (const l of lines) {
      const leak = leaksImage(l, null) ?? bytes.map((b) => leaksImage(l, b)).find(Boolean);
      if (leak) failures.push(`log line carries image data (${leak}): ${l.slice(0, 100)}`);
    }
    const phase = (ms, s) => ({ requests: ms.length, seconds: +s.toFixed(1), per_s: +(ms.length / s).toFixed(1), p50_ms: Math.round(pct(ms, 50)), p95_ms: Math.round(pct(ms, 95)), p99_ms: Math.round(pct(ms, 99)), max_ms: Math.round(Math.max(...ms)) });
    const report = {
      command: `npm run load -- --clients ${o.clients} --requests ${o.requests} --seconds ${o.seconds}`, model: `${active.name}/${active.version}`, photos: source,
      clients: o.clients, burst: phase(burstMs, burstS), sustained: phase(sustainedMs, sustainedS), memory, log_lines: lines.length,
      failure_count: failures.length, failures: failures.slice(0, 20),
    };
    if (o.json) writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
    console.log(JSON.stringify(report, null, 2));
    if (failures.length) throw new Error(`${failures.length} failures`);
    console.log(`\n✔ ${burstMs.length + sustainedMs.length} requests from ${o.clients} clients: every one 200 and byte-identical to the sequential answer; no image data in ${lines.length} log lines`);
  } finally {
    await stop();
  }
}

main().catch((err) => fail(err instanceof UsageError ? err.message : err.stack ?? String(err)));
