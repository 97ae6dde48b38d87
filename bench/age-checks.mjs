#!/usr/bin/env node
// `npm run bench:age-checks`: what an age check built on `over=T` gets wrong, per tier, on the
// whole UTKFace test split, through the served path (workerd, POST /v1/age?crop=image&over=...).
// A benchmark, not a test: its metric code (bench/lib/age-check-metrics.ts) has the unit test.
//
//   npm run bench:age-checks                              # both tiers, all 2,078 test faces
//   npm run bench:age-checks -- --limit 200 --json out.json --md docs/age-checks.md --svg docs/age-checks.svg
//   npm run bench:age-checks -- --fairness                # and models/<name>/<version>/fairness.json per tier
//
// For T in 13, 16, 18, 21, 25 and the rules P(age >= T) >= 0.5 / 0.8 / 0.95 and "estimate >= T +
// buffer" (0..7 years): false accepts (people under T who pass, by band of true age) and false
// rejects (people T or over who are refused), with 95% Wilson intervals; the reliability of
// P(age >= T) (expected calibration error, and a plot); the model's decision by its default rule
// and by the rule of each other false-accept target it has (false_accept=, one more request per
// face and target); and, at T = 18, the cheapest rule found
// that keeps under-18 false accepts under 1% on these faces. Beside them, the measures age-assurance
// tests report: "challenge 25" (under-18s estimated at 25 or more), 13-17s estimated under 25,
// 6-11s estimated under 13, and MAE by gender x race with the spread between groups; and the
// decision at 18 by sex and by race, raw and re-weighted to one age mix. The JSON holds per-face answers
// (derived from UTKFace): keep it out of git; the Markdown and the SVG hold only aggregates.
// --fairness writes that last table's numbers beside each measured model, as fairness.json, for its
// card (training/card.py): one definition of them, here and in bench/lib/age-check-metrics.ts.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { CONTRACT, ROOT, UsageError, fail, parseOptions } from '../scripts/lib.mjs';
import { seed } from '../scripts/models.mjs';
import { FAIRNESS_BANDS, assuranceMeasures, checkReport, cheapestRuleUnder, decisionOf, fairnessBy, maeByGroup, reliability, ruleLabel } from './lib/age-check-metrics.ts';
import { utkfaceTestRows } from './lib/utkface.mjs';
import { startBenchWorker } from './lib/worker.mjs';

const THRESHOLDS = [13, 16, 18, 21, 25];
const RULES = [
  { kind: 'decision' },
  ...[0.5, 0.8, 0.95].map((p) => ({ kind: 'probability', p })),
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((years) => ({ kind: 'buffer', years })),
];
// Searched for the 1% rule at T = 18 (finer than the table's rules).
const SEARCH = [
  ...Array.from({ length: 100 }, (_, i) => ({ kind: 'probability', p: Math.round((0.5 + i * 0.005) * 1000) / 1000 })),
  ...Array.from({ length: 31 }, (_, i) => ({ kind: 'buffer', years: i / 2 })),
];
const TIERS = CONTRACT.tiers;

function parseArgs(argv) {
  const { values } = parseOptions(argv, { data: { type: 'string' }, limit: { type: 'string' }, json: { type: 'string' }, md: { type: 'string' }, svg: { type: 'string' }, fairness: { type: 'boolean' } });
  const opts = {
    data: values.data === undefined ? join(ROOT, '..', 'shared', 'data', 'utkface') : resolve(values.data),
    limit: values.limit === undefined ? undefined : Number(values.limit),
    json: values.json,
    md: values.md,
    svg: values.svg,
    fairness: values.fairness ?? false,
  };
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit > 0)) throw new UsageError('--limit must be a positive integer');
  return opts;
}

/** The test split (or `limit` faces evenly spaced through it), as file, age and JPEG bytes. */
function testFaces(dir, limit) {
  return utkfaceTestRows(dir, limit).rows.map((r) => ({ file: r.file, truth: r.age, gender: r.gender, race: r.race, jpeg: readFileSync(join(dir, 'images', r.file)) }));
}

const pct = (r) => (Number.isNaN(r.rate) ? '–' : `${(100 * r.rate).toFixed(1)}% [${(100 * r.ci95[0]).toFixed(1)}, ${(100 * r.ci95[1]).toFixed(1)}]`);
const frac = (r) => `${r.k} / ${r.n}`;

/** One table over both tiers: challenge 25 and the rest, then MAE by gender x race. */
function assuranceTables(results, n) {
  const m = Object.fromEntries(TIERS.map((tier) => [tier, assuranceMeasures(results[tier].faces)]));
  const g = Object.fromEntries(TIERS.map((tier) => [tier, maeByGroup(results[tier].faces)]));
  const out = [`### Age-assurance measures (${n} test faces)`, '',
    `| measure | ${TIERS.map((t) => `\`${t}\`: ${results[t].model}`).join(' | ')} |`, `|---|${TIERS.map(() => '---').join('|')}|`,
    `| Challenge 25: under-18s estimated at 25 or more (lower is better) | ${TIERS.map((t) => `${pct(m[t].challenge25)} (${frac(m[t].challenge25)})`).join(' | ')} |`,
    `| 13–17s estimated under 25 (higher is better) | ${TIERS.map((t) => `${pct(m[t].teensUnder25)} (${frac(m[t].teensUnder25)})`).join(' | ')} |`,
    `| 6–11s estimated under 13 (higher is better) | ${TIERS.map((t) => `${pct(m[t].childrenUnder13)} (${frac(m[t].childrenUnder13)})`).join(' | ')} |`,
    '', `MAE by gender × race (UTKFace's labels; the spread is the largest minus the smallest MAE among groups of at least ${g[TIERS[0]].minFaces} faces):`, '',
    `| group | faces | ${TIERS.map((t) => `MAE \`${t}\``).join(' | ')} |`, `|---|---|${TIERS.map(() => '---').join('|')}|`];
  for (const row of g[TIERS[0]].rows) {
    out.push(`| ${row.group} | ${row.n} | ${TIERS.map((t) => g[t].rows.find((r) => r.group === row.group).mae.toFixed(2)).join(' | ')} |`);
  }
  out.push(`| **spread** (worst group) | | ${TIERS.map((t) => `${g[t].spread.toFixed(2)} (${g[t].worst?.group})`).join(' | ')} |`, '');
  return out.join('\n');
}

/**
 * The decision at 18 by sex and by race (UTKFace's labels): MAE, adults referred, minors who
 * pass, each raw and re-weighted to the whole set's age mix (so a group that is younger is not
 * referred more for being younger), with 95% Wilson intervals at the effective sample size.
 * The one source of the Markdown table and of fairness.json.
 */
const FAIRNESS_AT = 18;
const FAIRNESS_RULE = { kind: 'decision' };   // the model's default rule
const fairnessRows = (faces) => ({ gender: fairnessBy(faces, 'gender', FAIRNESS_AT, FAIRNESS_RULE), race: fairnessBy(faces, 'race', FAIRNESS_AT, FAIRNESS_RULE) });

function fairnessTables(results, n) {
  const rate = (r) => (Number.isNaN(r.rate) ? '–' : `${(100 * r.rate).toFixed(1)}% [${(100 * r.ci95[0]).toFixed(1)}, ${(100 * r.ci95[1]).toFixed(1)}]`);
  const out = [`### The decision at 18 by sex and race (${n} test faces, the model's default rule)`, '',
    "UTKFace's own labels (gender as the data set records it; race: White, Black, Asian, Indian, Others). " +
    '"Re-weighted": each group given the age mix of the whole set (adults among adults, minors among minors, everyone for MAE), ' +
    'so a gap that remains is not the groups being of different ages. Intervals are 95% Wilson at the effective sample size.', ''];
  for (const tier of TIERS) {
    out.push(`**Tier \`${tier}\`: ${results[tier].model}**`, '',
      '| group | faces | MAE | MAE re-weighted | adults referred at 18 | re-weighted | minors who pass at 18 | re-weighted |', '|---|---|---|---|---|---|---|---|');
    for (const rows of Object.values(fairnessRows(results[tier].faces))) {
      for (const r of rows) {
        out.push(`| ${r.group} | ${r.faces} | ${r.mae.toFixed(2)} | ${r.mae_reweighted.toFixed(2)} | ${rate(r.adults_referred)} (${r.adults_referred.n}) | ${rate(r.adults_referred_reweighted)} | ${rate(r.minors_pass)} (${r.minors_pass.n}) | ${rate(r.minors_pass_reweighted)} |`);
      }
    }
    out.push('');
  }
  return out.join('\n');
}

/**
 * fairness.json of one tier's model: fairnessRows rounded to 6 decimals (fine enough that the
 * card's 0.1% and 0.01 years round as the Markdown's do), with what was measured and the command
 * that wrote it. A share with no faces (NaN) is null.
 */
function fairnessJson({ model, target, faces }, command) {
  const round = (x, digits) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);
  const share = (r) => ({ rate: round(r.rate, 6), ci95: r.ci95.map((x) => round(x, 6)), n: r.n, n_effective: round(r.n_effective, 2) });
  const row = (r) => ({ group: r.group, faces: r.faces, mae: round(r.mae, 6), mae_reweighted: round(r.mae_reweighted, 6),
    adults_referred: share(r.adults_referred), adults_referred_reweighted: share(r.adults_referred_reweighted),
    minors_pass: share(r.minors_pass), minors_pass_reweighted: share(r.minors_pass_reweighted) });
  const rows = fairnessRows(faces);
  return {
    model, threshold: FAIRNESS_AT, rule: ruleLabel(FAIRNESS_RULE), false_accept_target: target,
    data: 'UTKFace test', labels: "UTKFace's own: gender, and race as White, Black, Asian, Indian, Others", faces: faces.length,
    reweighted_to: "the whole set's age mix over these bands of true age: adults among adults, minors among minors, everyone for MAE",
    age_bands: FAIRNESS_BANDS.map(([lo, hi]) => `${lo}-${hi}`),
    by: { gender: rows.gender.map(row), race: rows.race.map(row) },
    date: new Date().toISOString().slice(0, 10), command,
  };
}

/** JSON indented, with each flat array and then each flat object (a share) on one line: short to
 *  read and to diff. Its strings hold no brackets, so the brackets found are the JSON's own. */
const compactJson = (value) => JSON.stringify(value, null, 2)
  .replace(/\[[^[\]{}]*\]/g, (m) => m.replace(/\s+/g, ' ').replace('[ ', '[').replace(' ]', ']'))
  .replace(/\{[^[\]{}]*(\[[^[\]{}]*\][^[\]{}]*)*\}/g, (m) => m.replace(/\s+/g, ' ')) + '\n';

function tables(results, n, active) {
  const out = [assuranceTables(results, n), fairnessTables(results, n)];
  for (const tier of TIERS) {
    const { faces, model, targets } = results[tier];
    const rules = [RULES[0], ...targets.map((falseAccept) => ({ kind: 'decision', falseAccept })), ...RULES.slice(1)];
    out.push(`### Tier \`${tier}\`: ${model} (${n} test faces)`, '');
    for (const t of THRESHOLDS) {
      const bands = checkReport(faces, t, RULES[1]).falseAcceptByBand.map((b) => b.label);
      out.push(`**T = ${t}**`, '',
        `| rule | under ${t} who pass (false accept) | ${bands.map((b) => `of them ${b}`).join(' | ')} | ${t} or over refused (false reject) | of them ${t}–${t + 4} |`,
        `|---|---|${bands.map(() => '---').join('|')}|---|---|`);
      for (const rule of rules) {
        if (rule.kind === 'decision' && faces.some((f) => decisionOf(f, t, rule) == null)) continue;   // no rule fitted at t
        const r = checkReport(faces, t, rule);
        out.push(`| ${r.rule} | ${pct(r.falseAccept)} (${frac(r.falseAccept)}) | ${r.falseAcceptByBand.map((b) => `${pct(b)} (${frac(b)})`).join(' | ')} | ${pct(r.falseReject)} (${frac(r.falseReject)}) | ${pct(r.falseRejectNear)} |`);
      }
      const rel = reliability(faces, t);
      out.push('', `Reliability of P(age ≥ ${t}): expected calibration error ${rel.ece.toFixed(3)} (10 bins).`, '');
    }
    const best = cheapestRuleUnder(faces, 18, 0.01, SEARCH);
    out.push(best
      ? `**Under-18 false accepts under 1% at T = 18** (the rule among P ≥ 0.500…0.995 and estimate ≥ 18 + 0…15 years that refuses the fewest adults while passing under 1% of the under-18s on these faces; chosen on the test split itself, so its rate elsewhere will be somewhat higher): **${best.rule}** passes ${pct(best.falseAccept)} of under-18s (${frac(best.falseAccept)}) and refuses ${pct(best.falseReject)} of adults (${frac(best.falseReject)}), ${pct(best.falseRejectNear)} of those aged 18–22.`
      : '**No searched rule keeps under-18 false accepts under 1%** on these faces.', '');
  }
  return out.join('\n');
}

function svg(results) {
  const W = 560, H = 420, L = 60, R = 150, T = 40, B = 50;
  const X = (v) => L + v * (W - L - R), Y = (v) => T + (1 - v) * (H - T - B);
  const colours = { fast: '#1f7ae0', accurate: '#d9480f' };
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${(W - R + L) / 2}" y="22" text-anchor="middle" font-size="14">Reliability of P(age ≥ 18), UTKFace test</text>`,
    `<line x1="${X(0)}" y1="${Y(0)}" x2="${X(1)}" y2="${Y(1)}" stroke="#999" stroke-dasharray="4 4"/>`];
  for (let i = 0; i <= 5; i++) {
    const v = i / 5;
    out.push(`<line x1="${X(v)}" y1="${Y(0)}" x2="${X(v)}" y2="${Y(0) + 5}" stroke="black"/><text x="${X(v)}" y="${Y(0) + 18}" text-anchor="middle">${v.toFixed(1)}</text>`,
      `<line x1="${X(0) - 5}" y1="${Y(v)}" x2="${X(0)}" y2="${Y(v)}" stroke="black"/><text x="${X(0) - 8}" y="${Y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  out.push(`<rect x="${X(0)}" y="${Y(1)}" width="${X(1) - X(0)}" height="${Y(0) - Y(1)}" fill="none" stroke="black"/>`,
    `<text x="${(X(0) + X(1)) / 2}" y="${H - 12}" text-anchor="middle">P(age ≥ 18) given (bin mean)</text>`,
    `<text transform="translate(16 ${(Y(0) + Y(1)) / 2}) rotate(-90)" text-anchor="middle">share truly 18 or over</text>`);
  TIERS.forEach((tier, k) => {
    const rel = reliability(results[tier].faces, 18);
    const pts = rel.bins.filter((b) => b.n > 0);
    out.push(`<polyline fill="none" stroke="${colours[tier]}" stroke-width="2" points="${pts.map((b) => `${X(b.meanP).toFixed(1)},${Y(b.observed).toFixed(1)}`).join(' ')}"/>`);
    for (const b of pts) out.push(`<circle cx="${X(b.meanP).toFixed(1)}" cy="${Y(b.observed).toFixed(1)}" r="${Math.min(9, 2 + Math.sqrt(b.n) / 4).toFixed(1)}" fill="${colours[tier]}" fill-opacity="0.6"/>`);
    out.push(`<text x="${X(1) + 12}" y="${T + 20 + 20 * k}" fill="${colours[tier]}">${tier}: ECE ${rel.ece.toFixed(3)}</text>`);
  });
  out.push(`<text x="${X(1) + 12}" y="${T + 70}" fill="#666">dot area ∝ faces</text>`, '</svg>');
  return out.join('\n') + '\n';
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const faces = testFaces(opts.data, opts.limit);
  const active = JSON.parse(readFileSync(join(ROOT, 'models', 'active.json'), 'utf8'));
  console.log(`${faces.length} UTKFace test faces; starting workerd with models/ (tiers ${TIERS.map((t) => `${t}: ${active.tiers[t].name}/${active.tiers[t].version}`).join(', ')})`);
  const started = Date.now();
  const { base, stop } = await startBenchWorker((persist) => seed(join(ROOT, 'models'), persist, () => {}));
  const results = {};
  try {
    const models = await (await fetch(`${base}/v1/models`)).json();
    for (const tier of TIERS) {
      // The default rule's answer, then one more request per other false-accept target fitted.
      const [target = null, ...targets] = models.tiers[tier].active?.false_accept_targets ?? [];
      const answers = [];
      let model;
      for (const f of faces) {
        const ask = async (extra = '') => {
          const res = await fetch(`${base}/v1/age?crop=image&model=${tier}&over=${THRESHOLDS.join(',')}${extra}`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: f.jpeg });
          const body = await res.json();
          if (res.status !== 200) throw new Error(`${f.file}: HTTP ${res.status} ${JSON.stringify(body)}`);
          model = `${body.model.name}/${body.model.version}`;
          return body.faces[0];
        };
        const decisions = (face) => Object.fromEntries(face.over.map((o) => [o.age, o.decision ?? null]));
        const face = await ask();
        const decisionFor = {};
        for (const target of targets) decisionFor[target] = decisions(await ask(`&false_accept=${target}`));
        answers.push({ truth: f.truth, age: face.age, gender: f.gender, race: f.race, over: Object.fromEntries(face.over.map((o) => [o.age, o.probability])),
          decision: decisions(face), decisionFor });
      }
      results[tier] = { model, target, targets, faces: answers };
      console.log(`${tier}: ${model}, ${answers.length} answers`);
    }
  } finally {
    await stop();
  }
  const minutes = ((Date.now() - started) / 60000).toFixed(1);
  const md = [`<!-- written by: npm run bench:age-checks${opts.limit ? ` -- --limit ${opts.limit}` : ''} (${minutes} min on ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}) -->`,
    tables(results, faces.length, active)].join('\n');
  console.log(md);
  if (opts.md) writeFileSync(opts.md, md + '\n');
  if (opts.svg) writeFileSync(opts.svg, svg(results));
  if (opts.json) writeFileSync(opts.json, JSON.stringify({ thresholds: THRESHOLDS, rules: RULES.map(ruleLabel), results }) + '\n');
  if (opts.fairness) {
    const command = ['npm run bench:age-checks --', ...process.argv.slice(2)].join(' ');
    for (const tier of TIERS) {
      const dir = join(ROOT, 'models', ...results[tier].model.split('/'));
      if (!existsSync(join(dir, 'manifest.json'))) throw new Error(`tier ${tier} served ${results[tier].model}, which is not in models/`);
      writeFileSync(join(dir, 'fairness.json'), compactJson(fairnessJson(results[tier], command)));
      console.log(`wrote ${relative(ROOT, join(dir, 'fairness.json'))}`);
    }
  }
}

main().catch(fail);
