#!/usr/bin/env node
// `npm run bench:capture`: the age check under the captures people send. Test faces, each clean
// and under every degraded condition of training/capture.py (small, blur, dark with sensor noise,
// hard JPEG, gray, an eyes band, a lower-face band; two levels each), are posted as files to the
// served path (workerd, POST /v1/age?crop=image&over=18) for both tiers, and given to face-api's
// ageGenderNet (the same decoded pixels). A benchmark, not a test: its metric code
// (bench/lib/capture-metrics.ts) has the unit test.
//
//   npm run bench:capture -- --faces 600 --md docs/capture-tables.md --svg docs/capture.svg --json runs/capture.json
//   npm run bench:capture -- --models DIR --label "7.1 as shipped"     # another models/ tree
//   npm run bench:capture -- --no-face-api --with runs/capture-before.json   # an earlier run's answers (same
//                                                                            # images) as more columns
//   npm run bench:capture -- --false-accept 0.02     # each tier's decision by its rule for that target
//
// The images are written once by training/capture.py (python -m training capture write), the
// functions training degrades its faces with, into .cache/capture/test-<faces>/ (UTKFace-derived:
// never in git; the JSON holds per-face answers: keep it out of git too).
// Per model and condition: MAE with a 95% interval, the 80% range's coverage and width, minors
// estimated 18+, challenge 25 (under-18s estimated 25+), and at T = 18 the share of minors who
// pass and of adults who pass, with 95% Wilson intervals. "Pass" is the answer's `decision`
// where the model has a rule, else P(age >= 18) >= 0.95 (the rule docs/age-checks.md recommended
// before decisions), and estimate >= 18 for face-api, which gives no probability.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { CONTRACT, ROOT, UsageError, fail, parseOptions } from '../scripts/lib.mjs';
import { seed } from '../scripts/models.mjs';
import { captureReport } from './lib/capture-metrics.ts';
import { ensurePeers, peers } from './lib/peers.mjs';
import { decodeImage } from './lib/server-code.mjs';
import { startBenchWorker } from './lib/worker.mjs';

// The accurate tier's rows first, as docs/capture.md shows them.
const TIERS = [...CONTRACT.tiers].reverse();
const OLD_RULE_P = 0.95;

function parseArgs(argv) {
  const { values } = parseOptions(argv, {
    faces: { type: 'string' }, data: { type: 'string' }, models: { type: 'string' }, label: { type: 'string' }, md: { type: 'string' },
    svg: { type: 'string' }, json: { type: 'string' }, 'no-face-api': { type: 'boolean' }, 'false-accept': { type: 'string' },
    with: { type: 'string', multiple: true },
  });
  const opts = {
    falseAccept: values['false-accept'],
    faces: Number(values.faces ?? 600),
    data: values.data === undefined ? join(ROOT, '..', 'shared', 'data', 'utkface') : resolve(values.data),
    models: values.models === undefined ? join(ROOT, 'models') : resolve(values.models),
    label: values.label,
    md: values.md,
    svg: values.svg,
    json: values.json,
    faceApi: !values['no-face-api'],
    with: (values.with ?? []).map((w) => resolve(w)),
  };
  if (!(Number.isInteger(opts.faces) && opts.faces > 0)) throw new UsageError('--faces must be a positive integer');
  return opts;
}

/** The benchmark's images, written by training/capture.py if they are not there yet. */
function images(opts) {
  const dir = join(ROOT, '.cache', 'capture', `test-${opts.faces}`);
  if (!existsSync(join(dir, 'index.json'))) {
    console.log(`Writing ${opts.faces} test faces x 15 conditions into ${dir} (training/capture.py)…`);
    const python = join(ROOT, 'training', '.venv', 'bin', 'python');
    const r = spawnSync(existsSync(python) ? python : 'python3', ['-m', 'training', 'capture', 'write', '--out', dir, '--faces', String(opts.faces), '--data-root', opts.data], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('python -m training capture write failed (run bash training/setup.sh first)');
  }
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  return { dir, index };
}

async function ours(base, dir, index, tier, falseAccept) {
  const out = Object.fromEntries(index.conditions.map((c) => [c, []]));
  let model, rule = falseAccept ? `decision at false_accept=${falseAccept}` : 'decision';
  const started = Date.now();
  for (const [i, face] of index.faces.entries()) {
    if (i && i % 100 === 0) console.log(`  ${tier}: ${i} of ${index.faces.length} faces (${((Date.now() - started) / 60000).toFixed(1)} min)`);
    for (const c of index.conditions) {
      const file = face.images[c];
      const res = await fetch(`${base}/v1/age?crop=image&model=${tier}&over=18${falseAccept ? `&false_accept=${falseAccept}` : ''}`, {
        method: 'POST', headers: { 'content-type': file.endsWith('.jpg') ? 'image/jpeg' : 'image/png' }, body: readFileSync(join(dir, file)),
      });
      const body = await res.json();
      if (res.status !== 200) throw new Error(`${file}: HTTP ${res.status} ${JSON.stringify(body)}`);
      const f = body.faces[0];
      model = `${body.model.name}/${body.model.version}`;
      const over = f.over[0];
      if (over.decision === null || over.decision === undefined) rule = `P(age ≥ 18) ≥ ${OLD_RULE_P}`;
      const pass18 = over.decision ? over.decision === 'pass' : over.probability >= OLD_RULE_P;
      out[c].push({ truth: face.age, age: f.age, range: f.range, pass18, quality: f.quality?.score ?? null, reasons: f.quality?.reasons ?? [] });
    }
  }
  return { name: `${tier}: ${model}`, model, rule, answers: out };
}

async function faceApi(dir, index) {
  ensurePeers();
  const { rows } = await peers(['face-api']);
  const predict = rows[0].predict;
  const out = Object.fromEntries(index.conditions.map((c) => [c, []]));
  for (const face of index.faces) {
    for (const c of index.conditions) {
      const image = decodeImage(readFileSync(join(dir, face.images[c])), { maxPixels: 4e6, maxMemoryMB: 256 });
      const age = await predict({ image });
      out[c].push({ truth: face.age, age, range: null, pass18: age >= 18 });
    }
  }
  return { name: 'face-api ageGenderNet', model: 'face-api', rule: 'estimate ≥ 18', answers: out };
}

const f2 = (v) => (Number.isFinite(v) ? v.toFixed(2) : '–');
const pct = (r) => (!r || Number.isNaN(r.rate) ? '–' : `${(100 * r.rate).toFixed(1)}% [${(100 * r.ci95[0]).toFixed(1)}, ${(100 * r.ci95[1]).toFixed(1)}]`);
const frac = (r) => (r ? `${r.k}/${r.n}` : '');

function tables(runs, conditions, nFaces) {
  const reports = runs.map((r) => Object.fromEntries(conditions.map((c) => [c, captureReport(r.answers[c])])));
  const degraded = conditions.filter((c) => c !== 'clean');
  const meanMae = (rep) => degraded.reduce((s, c) => s + rep[c].mae.value, 0) / degraded.length;
  const out = [`### MAE by capture condition (${nFaces} test faces each; 95% intervals)`, '',
    `| condition | ${runs.map((r) => r.name).join(' | ')} |`, `|---|${runs.map(() => '---').join('|')}|`];
  for (const c of conditions) out.push(`| ${c} | ${reports.map((rep) => `${f2(rep[c].mae.value)} [${f2(rep[c].mae.ci95[0])}, ${f2(rep[c].mae.ci95[1])}]`).join(' | ')} |`);
  out.push(`| **mean of the ${degraded.length} degraded** | ${reports.map((rep) => `**${f2(meanMae(rep))}**`).join(' | ')} |`, '');

  out.push('### The age check at T = 18 by condition', '',
    `Minors who pass (false accepts) and adults who pass, each with its 95% Wilson interval. The rule: ${runs.map((r) => `${r.name}: ${r.rule}`).join('; ')}.`, '',
    `| condition | ${runs.map((r) => `${r.name}: minors pass | adults pass`).join(' | ')} |`, `|---|${runs.map(() => '---|---').join('|')}|`);
  for (const c of conditions) out.push(`| ${c} | ${reports.map((rep) => `${pct(rep[c].falseAccept18)} (${frac(rep[c].falseAccept18)}) | ${pct(rep[c].adultsPass18)}`).join(' | ')} |`);
  out.push('');

  out.push('### Minors estimated 18+ and challenge 25 (under-18s estimated 25+) by condition', '',
    `| condition | ${runs.map((r) => `${r.name}: 18+ | 25+`).join(' | ')} |`, `|---|${runs.map(() => '---|---').join('|')}|`);
  for (const c of conditions) out.push(`| ${c} | ${reports.map((rep) => `${pct(rep[c].minorsAdult)} | ${pct(rep[c].challenge25)}`).join(' | ')} |`);
  out.push('');

  const ranged = runs.map((r, i) => [r, reports[i]]).filter(([, rep]) => rep.clean.coverage);
  if (ranged.length) {
    out.push('### The 80% range: coverage (95% interval) and mean width in years', '',
      `| condition | ${ranged.map(([r]) => `${r.name}: coverage | width`).join(' | ')} |`, `|---|${ranged.map(() => '---|---').join('|')}|`);
    for (const c of conditions) out.push(`| ${c} | ${ranged.map(([, rep]) => `${pct(rep[c].coverage)} | ${f2(rep[c].meanWidth)}`).join(' | ')} |`);
    out.push('');
  }
  return { md: out.join('\n'), reports };
}

function svg(runs, reports, conditions) {
  const W = 760, H = 460, L = 60, R = 20, T = 40, B = 110;
  const colours = ['#d9480f', '#1f7ae0', '#777777', '#2b8a3e', '#862e9c'];
  const panelH = (H - T - B) / 2 - 10;
  const x0 = (i) => L + (i + 0.5) * ((W - L - R) / conditions.length);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">UTKFace test faces under capture conditions</text>`];
  const panel = (top, title, value, max) => {
    const Y = (v) => top + panelH * (1 - Math.min(v, max) / max);
    out.push(`<text x="${L}" y="${top - 6}">${title}</text>`, `<line x1="${L}" y1="${Y(0)}" x2="${W - R}" y2="${Y(0)}" stroke="black"/>`);
    for (let k = 0; k <= 4; k++) {
      const v = (max * k) / 4;
      out.push(`<text x="${L - 6}" y="${Y(v) + 4}" text-anchor="end">${Number.isInteger(v) ? v : v.toFixed(2)}</text>`, `<line x1="${L}" y1="${Y(v)}" x2="${W - R}" y2="${Y(v)}" stroke="#eee"/>`);
    }
    const bw = ((W - L - R) / conditions.length) * 0.8 / runs.length;
    conditions.forEach((c, i) => runs.forEach((_, j) => {
      const v = value(reports[j][c]);
      if (!Number.isFinite(v)) return;
      const x = x0(i) - (bw * runs.length) / 2 + j * bw;
      out.push(`<rect x="${x.toFixed(1)}" y="${Y(v).toFixed(1)}" width="${bw.toFixed(1)}" height="${(Y(0) - Y(v)).toFixed(1)}" fill="${colours[j % colours.length]}"/>`);
    }));
  };
  panel(T + 14, 'MAE (years)', (rep) => rep.mae.value, 14);
  panel(T + 14 + panelH + 30, 'Minors who pass the check at 18 (share)', (rep) => rep.falseAccept18?.rate ?? NaN, 0.5);
  conditions.forEach((c, i) => out.push(`<text transform="translate(${x0(i) + 3} ${H - B + 8}) rotate(60)" font-size="10">${c}</text>`));
  runs.forEach((r, j) => out.push(`<rect x="${L + j * 180}" y="${H - 16}" width="10" height="10" fill="${colours[j % colours.length]}"/><text x="${L + j * 180 + 14}" y="${H - 7}">${r.name}</text>`));
  out.push('</svg>');
  return out.join('\n') + '\n';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const { dir, index } = images(opts);
  console.log(`${index.faces.length} faces x ${index.conditions.length} conditions from ${dir}; workerd with ${opts.models}`);
  const runs = [];
  const { base, stop } = await startBenchWorker((persist) => seed(opts.models, persist, () => {}));
  try {
    for (const tier of TIERS) {
      runs.push(await ours(base, dir, index, tier, opts.falseAccept));
      console.log(`${runs.at(-1).name} done (${((Date.now() - started) / 60000).toFixed(1)} min)`);
    }
  } finally {
    await stop();
  }
  if (opts.faceApi) runs.push(await faceApi(dir, index));
  if (opts.label) for (const r of runs.slice(0, TIERS.length)) r.name = `${r.name} (${opts.label})`;
  for (const file of opts.with) {
    const earlier = JSON.parse(readFileSync(file, 'utf8'));
    if (earlier.faces !== index.faces.length || earlier.conditions.join() !== index.conditions.join()) throw new UsageError(`${file} answered other images`);
    runs.push(...earlier.runs);
  }
  const { md, reports } = tables(runs, index.conditions, index.faces.length);
  const minutes = ((Date.now() - started) / 60000).toFixed(1);
  const text = `<!-- written by: npm run bench:capture -- --faces ${index.faces.length}${opts.falseAccept ? ` --false-accept ${opts.falseAccept}` : ''}${opts.label ? ` --label "${opts.label}"` : ''} (${minutes} min on ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}) -->\n${md}`;
  console.log(text);
  if (opts.md) writeFileSync(opts.md, text + '\n');
  if (opts.svg) writeFileSync(opts.svg, svg(runs, reports, index.conditions));
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ faces: index.faces.length, conditions: index.conditions, runs: runs.map(({ name, model, rule, answers }) => ({ name, model, rule, answers })) }) + '\n');
}

main().catch((err) => fail(err instanceof UsageError ? err.message : err.stack ?? String(err)));
