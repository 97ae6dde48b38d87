#!/usr/bin/env node
// `npm run fuzz`: hostile inputs (test/fuzz/cases.ts, seeded) sent over loopback HTTP to the
// worker in local workerd (wrangler dev, a fresh local R2 seeded with a model), one at a time.
// Every answer must be a 2xx or a 4xx in the one error shape within --bound-ms, never a 5xx, a
// hang or a dropped connection; no log line may carry an input's bytes; a real face must get
// the same answer after the run as before it. Prints the tally for docs/reliability.md.
//
//   npm run fuzz                                   # 10,000 cases, seed 1, the contract fixture
//   npm run fuzz -- --n 20000 --seed 7 --models models --json fuzz.json
//   npm run fuzz -- --seed 1 --only 4711           # replay one case (or a range: --only 4700-4711)
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { ROOT, startLocalWorker, treeRssMiB, UsageError, fail, parseOptions } from '../scripts/lib.mjs';
import { seed as seedR2 } from '../scripts/models.mjs';
import { checkAnswer, generateOne, leaksImage, makeSeeds } from '../test/fuzz/cases.ts';

function parseArgs(argv) {
  const { values } = parseOptions(argv, {
    n: { type: 'string' }, seed: { type: 'string' }, models: { type: 'string' }, 'bound-ms': { type: 'string' },
    'max-body': { type: 'string' }, json: { type: 'string' }, only: { type: 'string' }, // --only: an id, or a range A-B
  });
  return {
    n: Number(values.n ?? 10_000),
    seed: Number(values.seed ?? 1),
    models: values.models === undefined ? join(ROOT, 'test/fixtures/model') : resolve(values.models),
    boundMs: Number(values['bound-ms'] ?? 5000),
    maxBody: Number(values['max-body'] ?? 1 << 20),
    json: values.json === undefined ? undefined : resolve(values.json),
    only: values.only,
  };
}

/**
 * One request on its own connection (`connection: close`, so no case inherits a connection a
 * previous one broke), written by hand: Content-Length as the case says (it may lie) or as
 * sent, or chunked transfer encoding for a streamed body; then the write side is closed.
 */
function send(port, c, timeoutMs) {
  return new Promise((res) => {
    const sock = connect(port, '127.0.0.1');
    const chunks = [];
    const done = (r) => {
      clearTimeout(timer);
      sock.destroy();
      res(r);
    };
    const timer = setTimeout(() => done({ hang: true }), timeoutMs);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {}); // EPIPE after an early answer: the answer is what counts
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = text.match(/^HTTP\/1\.1 (\d{3})[^\r\n]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/);
      if (!m) return done({ closed: true });
      const headers = Object.fromEntries(m[2].split('\r\n').map((l) => [l.split(':')[0].toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      let body = m[3];
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        let out = '', at = 0;
        for (;;) {
          const eol = body.indexOf('\r\n', at);
          const size = parseInt(body.slice(at, eol), 16);
          if (!(size > 0)) break;
          out += body.slice(eol + 2, eol + 2 + size);
          at = eol + 2 + size + 2;
        }
        body = out;
      }
      done({ status: Number(m[1]), contentType: headers['content-type'] ?? null, text: Buffer.from(body, 'latin1').toString('utf8') });
    });
    const hasBody = c.body && c.method !== 'GET' && c.method !== 'HEAD';
    const framing = !hasBody ? {} : c.chunks ? { 'transfer-encoding': 'chunked' } : 'content-length' in c.headers ? {} : { 'content-length': String(c.body.length) };
    const head = [`${c.method} ${c.path} HTTP/1.1`, `host: 127.0.0.1:${port}`, 'connection: close',
      ...Object.entries({ ...c.headers, ...framing }).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
    sock.write(Buffer.from(head, 'utf8'));
    if (hasBody && c.chunks) {
      let at = 0;
      for (const n of c.chunks) {
        sock.write(`${n.toString(16)}\r\n`);
        sock.write(c.body.subarray(at, at + n));
        sock.write('\r\n');
        at += n;
      }
      sock.write('0\r\n\r\n');
    } else if (hasBody) sock.write(c.body);
    sock.end();
  });
}

/**
 * Requests that are malformed as HTTP (a Content-Length that is not a number, or larger than
 * the bytes sent before the client closed) are refused by the local HTTP layer in front of
 * the worker (workerd's parser, miniflare's dev proxy) with plain text, or the connection is
 * closed: the worker never sees them. On Cloudflare the edge answers them. Counted apart.
 */
function malformedHttp(c) {
  const declared = c.headers['content-length'];
  if (declared === undefined) return false;
  const n = Number(declared);
  return !/^\d+$/.test(declared) || !Number.isSafeInteger(n) || n > (c.body?.length ?? 0);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  // Every line wrangler and the worker print is kept (lines) for the privacy check.
  const { base, port, seeded: active, child, lines, stop } = await startLocalWorker({
    seedInto: (persist) => seedR2(o.models, persist, () => {}), vars: { MAX_BODY_BYTES: String(o.maxBody) }, prefix: 'age-edge-fuzz-',
  });
  try {
    const faceFile = join(ROOT, '..', 'shared', 'data', 'utkface', 'labels.csv');
    let face;
    if (existsSync(faceFile)) {
      const name = readFileSync(faceFile, 'utf8').split(/\r?\n/).find((l) => l.endsWith(',test')).split(',')[0];
      face = readFileSync(join(ROOT, '..', 'shared', 'data', 'utkface', 'images', name));
    } else {
      console.warn('../shared/data/utkface not found: the before/after check uses a generated photo');
      face = makeSeeds().jpegs[1];
    }
    const ask = async () => {
      const r = await send(port, { method: 'POST', path: '/v1/age', headers: { 'content-type': 'image/jpeg' }, body: face }, 30_000);
      return { status: r.status, text: r.text };
    };
    const beforeAnswer = await ask();
    if (beforeAnswer.status !== 200) throw new Error(`the real face before the run: ${beforeAnswer.status} ${beforeAnswer.text}`);
    const heap = async () => JSON.parse(await (await fetch(`${base}/v1/models`)).text()).wasm_heap_bytes;
    const memory = [{ after: 0, wasmHeapMiB: (await heap()) / 2 ** 20, ...treeRssMiB(child.pid) }];

    const seeds = makeSeeds();
    const [from, to] = (o.only ?? '').split('-').map(Number);
    const ids = o.only !== undefined ? Array.from({ length: (to ?? from) - from + 1 }, (_, i) => from + i) : Array.from({ length: o.n }, (_, i) => i);
    const tally = {}, byCategory = {}, failures = [], slow = [];
    let sent = 0, malformed = 0;
    const started = performance.now();
    for (const id of ids) {
      const c = generateOne(o.seed, id, seeds, { maxBodyBytes: o.maxBody });
      const seen = lines.length;
      const t = performance.now();
      const r = await send(port, c, o.boundMs * 4);
      const ms = performance.now() - t;
      if (o.only !== undefined) console.log({ case: { ...c, body: `${c.body?.length ?? 0} bytes` }, answer: r, ms, log: lines.slice(seen) });
      sent++;
      slow.push({ id, category: c.category, ms, status: r.status ?? (r.hang ? 'hang' : 'closed') });
      let key;
      let why;
      const fromHttpLayer = !r.hang && malformedHttp(c) && (r.closed || !/^application\/json/.test(r.contentType ?? ''));
      if (r.hang) {
        key = 'hang';
        why = 'no answer';
      } else if (fromHttpLayer) {
        key = r.closed ? 'malformed HTTP: closed' : `malformed HTTP: ${r.status} from the HTTP layer`;
        if (!r.closed && r.status < 400) why = `status ${r.status}`;
      } else if (r.closed) {
        key = 'dropped';
        why = 'connection dropped without an answer';
      } else {
        key = String(r.status);
        if (r.status >= 400 && c.method !== 'HEAD') {
          try {
            key += ` ${JSON.parse(r.text).error.code}`;
          } catch {}
        }
        why = checkAnswer(c, r.status, r.contentType, r.text);
      }
      if (fromHttpLayer) malformed++;
      tally[key] = (tally[key] ?? 0) + 1;
      (byCategory[c.category] ??= {})[key] = (byCategory[c.category][key] ?? 0) + 1;
      const slowWhy = ms > o.boundMs ? `answer took ${ms.toFixed(0)} ms (bound ${o.boundMs})` : undefined;
      // Lines printed for this case (wrangler's request line, anything the worker logged).
      await new Promise((res) => setImmediate(res));
      const leak = [r.text ?? '', ...lines.slice(seen)].map((l) => leaksImage(l, c.body)).find(Boolean);
      // With the answer's start and the case's log lines, so a failure that does not come back on
      // replay (a race under load) still says who answered.
      const seenHere = { answer: (r.text ?? '').slice(0, 160), log: lines.slice(seen).map((l) => l.slice(0, 160)).slice(0, 5) };
      for (const w of [why, slowWhy, leak && `leak: ${leak}`].filter(Boolean)) failures.push({ id, category: c.category, method: c.method, path: c.path.slice(0, 120), why: w, ...(leak ? {} : seenHere) });
      if (sent % 1000 === 0) {
        memory.push({ after: sent, wasmHeapMiB: (await heap()) / 2 ** 20, ...treeRssMiB(child.pid) });
        console.log(`  ${sent} sent, ${failures.length} failures, ${((performance.now() - started) / 1000).toFixed(0)} s, wasm heap ${memory.at(-1).wasmHeapMiB.toFixed(1)} MiB, workerd ${memory.at(-1).workerdMiB} MiB, wrangler ${memory.at(-1).wranglerMiB} MiB`);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const afterAnswer = await ask();
    if (afterAnswer.status !== 200 || afterAnswer.text !== beforeAnswer.text) failures.push({ id: 'real face', why: `after the run: ${afterAnswer.status}, ${afterAnswer.text === beforeAnswer.text ? 'same' : 'different'} answer` });
    memory.push({ after: sent, wasmHeapMiB: (await heap()) / 2 ** 20, ...treeRssMiB(child.pid) });
    // The whole log, once more, for anything image-like outside a case's window.
    for (const l of lines) {
      const leak = leaksImage(l, null);
      if (leak) failures.push({ id: 'log', why: `${leak}: ${l.slice(0, 120)}` });
    }
    slow.sort((a, b) => b.ms - a.ms);
    const report = {
      command: `npm run fuzz -- --n ${o.n} --seed ${o.seed}`, model: `${active.name}/${active.version}`, seed: o.seed, sent, seconds: Math.round(seconds),
      bound_ms: o.boundMs, max_body_bytes: o.maxBody, tally, by_category: byCategory, slowest: slow.slice(0, 10).map((s) => ({ ...s, ms: Math.round(s.ms) })),
      memory, log_lines: lines.length, malformed_http: malformed, real_face_same_answer: afterAnswer.text === beforeAnswer.text, failures: failures.slice(0, 50), failure_count: failures.length,
    };
    if (o.json) writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
    console.log(JSON.stringify({ ...report, by_category: undefined }, null, 2));
    if (failures.length) throw new Error(`${failures.length} failures (first: ${JSON.stringify(failures[0])})`);
    console.log(`\n✔ ${sent} hostile inputs in ${seconds.toFixed(0)} s: from the worker no 5xx, hang or dropped connection, every answer within ${o.boundMs} ms` +
      ` (${malformed} malformed as HTTP, answered by the HTTP layer in front of it), no image bytes in ${lines.length} log lines, the real face answered as before`);
  } finally {
    await stop();
  }
}

main().catch((err) => fail(err instanceof UsageError ? err.message : err.stack ?? String(err)));
