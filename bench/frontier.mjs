#!/usr/bin/env node
// The speed/accuracy frontier from one `npm run bench:peers -- --json FILE` run (several of our
// models and face-api on the same faces, timed taking turns): a markdown table with each
// model's MAE, its time per face as a ratio to face-api's in that run, and the paired bootstrap
// of its MAE minus face-api's on the same faces; and an SVG scatter plot (no dependencies).
//
//   node bench/frontier.mjs results.json [--svg docs/frontier.svg] [--labels 'path=label,...']
//   node bench/frontier.mjs results.json --pair models/A/5,models/A/3.1   # also MAE(A) − MAE(B), paired
//
// The JSON holds per-face estimates and labels (derived from UTKFace): keep it out of git; the
// table and the picture hold only aggregates.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseOptions } from '../scripts/lib.mjs';
import { pairedBootstrap } from './lib/stats.mjs';

const PEER = 'face-api ageGenderNet';

function parseArgs(argv) {
  const { values, positionals } = parseOptions(
    argv,
    { svg: { type: 'string' }, labels: { type: 'string' }, resamples: { type: 'string' }, pair: { type: 'string', multiple: true } },
    { positionals: true, unknown: (arg) => `unknown argument ${arg}` },
  );
  if (positionals.length > 1) throw new Error(`unknown argument ${positionals[1]}`);
  const labels = {};
  for (const kv of (values.labels ?? '').split(',')) {
    const [k, v] = kv.split('=');
    if (k && v) labels[k] = v;
  }
  const opts = { json: positionals[0], svg: values.svg, labels, resamples: Number(values.resamples ?? 10000), pairs: (values.pair ?? []).map((p) => p.split(',')) };
  if (!opts.json) throw new Error('usage: node bench/frontier.mjs results.json [--svg FILE] [--labels path=label,...]');
  return opts;
}

/** A paired bootstrap's mean difference with its interval: "+0.07 [-0.13, 0.27]". */
function signed({ mean, ci95 }, digits) {
  return `${mean >= 0 ? '+' : '−'}${Math.abs(mean).toFixed(digits)} [${ci95[0].toFixed(digits)}, ${ci95[1].toFixed(digits)}]`;
}

function svg(points, peer, title) {
  const W = 720, H = 440, L = 70, R = 30, T = 40, B = 60;
  const xs = points.map((p) => p.ms), ys = points.map((p) => p.mae);
  const xmax = Math.max(...xs) * 1.1, ymin = Math.floor(Math.min(...ys) * 10 - 1) / 10, ymax = Math.ceil(Math.max(...ys) * 10 + 1) / 10;
  const X = (v) => L + (v / xmax) * (W - L - R);
  const Y = (v) => T + ((ymax - v) / (ymax - ymin)) * (H - T - B);
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`];
  for (let i = 0; i <= 5; i++) {
    const v = (xmax * i) / 5, y = ymin + ((ymax - ymin) * i) / 5;
    out.push(`<line x1="${X(v)}" y1="${T}" x2="${X(v)}" y2="${H - B}" stroke="#eee"/>`, `<text x="${X(v)}" y="${H - B + 16}" text-anchor="middle">${v.toFixed(0)}</text>`);
    out.push(`<line x1="${L}" y1="${Y(y)}" x2="${W - R}" y2="${Y(y)}" stroke="#eee"/>`, `<text x="${L - 8}" y="${Y(y) + 4}" text-anchor="end">${y.toFixed(2)}</text>`);
  }
  out.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`, `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">time per face, ms (onnxruntime-web / tfjs wasm, 1 thread, same run)</text>`);
  out.push(`<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">test MAE, years</text>`);
  if (peer) {
    // face-api's time and MAE: the fast tier's bars (at most its time, below its MAE).
    out.push(`<line x1="${X(peer.ms)}" y1="${T}" x2="${X(peer.ms)}" y2="${H - B}" stroke="#c33" stroke-dasharray="4 3"/>`);
    out.push(`<line x1="${L}" y1="${Y(peer.mae)}" x2="${W - R}" y2="${Y(peer.mae)}" stroke="#c33" stroke-dasharray="4 3"/>`);
  }
  for (const [i, p] of points.entries()) {
    const isPeer = p === peer;
    const dy = isPeer ? 18 : i % 2 === 0 ? -7 : 16; // labels alternate above and below; face-api's below
    out.push(isPeer ? `<rect x="${X(p.ms) - 5}" y="${Y(p.mae) - 5}" width="10" height="10" fill="#c33"/>` : `<circle cx="${X(p.ms)}" cy="${Y(p.mae)}" r="5" fill="${p.shipped ? '#1a5fb4' : '#888'}"/>`);
    const right = X(p.ms) < W - 230;
    out.push(`<text x="${X(p.ms) + (right ? 9 : -9)}" y="${Y(p.mae) + dy}" text-anchor="${right ? 'start' : 'end'}">${esc(p.label)}</text>`);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const run = JSON.parse(readFileSync(opts.json, 'utf8'));
  if (!run.truth) throw new Error(`${opts.json} has no per-face labels: rerun npm run bench:peers with --json (this version writes them)`);
  const peer = run.rows.find((r) => r.name === PEER);
  if (!peer) throw new Error(`${opts.json} has no ${PEER} row: run bench:peers with --peers face-api`);
  const rows = run.rows.map((r) => {
    const key = r.model ?? r.name;
    const label = opts.labels[key] ?? key;
    const b = r === peer ? null : pairedBootstrap(r.ages, peer.ages, run.truth, opts.resamples);
    return { r, label, ms: r.msPerFace, mae: r.mae, ratio: r.msPerFace / peer.msPerFace, b, shipped: /^al-resnet18-edge/.test(r.model ?? '') };
  });
  const f2 = (v) => v.toFixed(2);
  console.log(`${run.subset}; time per face: median of ${run.timedFaces} faces, models taking turns.\n`);
  console.log('| model | test MAE | MAE − face-api (95% paired bootstrap) | minors (0–17) at 18+ | of them 0–12 | time per face | vs face-api |');
  console.log('|---|---|---|---|---|---|---|');
  for (const p of rows) {
    const m = p.r.minors, c = p.r.children;
    const diff = p.b ? signed(p.b, 2) : '–';
    console.log(`| ${p.label} | ${f2(p.mae)} | ${diff} | ${m.asAdult} / ${m.n} (${((100 * m.asAdult) / m.n).toFixed(1)}%) | ${c.asAdult} / ${c.n} | ${p.ms.toFixed(1)} ms | ${p.ratio.toFixed(2)}× |`);
  }
  // Two of our versions against each other on the same faces (e.g. a release against the one it replaces).
  for (const [a, b] of opts.pairs) {
    const [ra, rb] = [a, b].map((key) => {
      const row = run.rows.find((r) => (r.model ?? r.name) === key.replace(/^models\//, ''));
      if (!row) throw new Error(`--pair: no model ${key} in this run`);
      return row;
    });
    const d = pairedBootstrap(ra.ages, rb.ages, run.truth, opts.resamples);
    console.log(`\nMAE ${a} − ${b} on the same faces: ${signed(d, 3)} years (95% paired bootstrap)`);
  }
  if (opts.svg) {
    const points = rows.map((p) => ({ ...p, label: p.label }));
    writeFileSync(opts.svg, svg(points, points.find((p) => p.r === peer), `UTKFace test (${run.faces} faces): MAE vs time per face, one run`));
    console.log(`\nwrote ${opts.svg}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
