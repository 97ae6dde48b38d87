#!/usr/bin/env bash
# `npm test`: the TypeScript tests in workerd, then the training tests. Both always run;
# the exit status fails if either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
# npm puts node_modules/.bin (Node 22 from the `node` package) first on PATH; keep it so when run directly.
export PATH="$PWD/node_modules/.bin:$PATH"
[ -x node_modules/.bin/vitest ] || node scripts/ensure-install.mjs || exit 1

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

ts=0
# The publish/rollback test mostly waits on wrangler processes: it runs beside vitest (with the
# import-cycle check, which reads src/).
node --test --test-reporter=tap scripts/models.test.mjs scripts/imports.test.mjs scripts/lib.test.mjs bench/lib/compose-photos.test.mjs >"$tmp/scripts.tap" 2>&1 &
scripts_pid=$!
echo "== TypeScript: types"
tsc --noEmit || ts=1
tsc --noEmit -p client || ts=1
wrangler types --check --strict-vars=false >/dev/null || { echo "worker-configuration.d.ts is out of date: run npm run types" >&2; ts=1; }
echo "== TypeScript: vitest in workerd"
vitest run --reporter=default --reporter=json --outputFile.json="$tmp/vitest.json" || ts=1

echo "== scripts: models publish/rollback against a local R2, import cycles, option reading, composed photos (node --test scripts/models.test.mjs scripts/imports.test.mjs scripts/lib.test.mjs bench/lib/compose-photos.test.mjs)"
sc=0
wait $scripts_pid || sc=1
grep -E '^(not )?ok |^# (pass|fail) ' "$tmp/scripts.tap"
[ $sc -eq 0 ] || { tail -40 "$tmp/scripts.tap" >&2; ts=1; }

# Real answers of the running worker against its OpenAPI document, and the typed client.
echo "== API answers against /v1/openapi.json, typed client (node --test test/e2e/openapi.test.mjs)"
node --test --test-reporter=tap test/e2e/openapi.test.mjs >"$tmp/openapi.tap" 2>&1 || ts=1
grep -E '^(not )?ok |^# (pass|fail|skip)|validated [0-9]+ answers' "$tmp/openapi.tap"
grep -q '^# fail 0' "$tmp/openapi.tap" || tail -60 "$tmp/openapi.tap" >&2

# Both tiers' answers on fixed UTKFace faces and composed photos, byte for byte as recorded
# (test/fixtures/golden/; skipped, saying so, without ../shared/data/utkface).
echo "== golden answers of both tiers (node --test test/e2e/golden.test.mjs)"
node --test --test-reporter=tap test/e2e/golden.test.mjs >"$tmp/golden.tap" 2>&1 || ts=1
grep -E '^(not )?ok |^# (pass|fail|skip)|# SKIP' "$tmp/golden.tap"
grep -q '^# fail 0' "$tmp/golden.tap" || tail -60 "$tmp/golden.tap" >&2

# The demo page end to end in headless Chromium (Debian's package, driven by playwright-core).
if ! [ -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing chromium (Debian) for the demo page's browser test"
  { apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; } >/dev/null 2>&1 \
    || echo "!! could not install chromium: the demo page will NOT be tested in a browser !!" >&2
fi
echo "== demo page in Chromium (node --test test/e2e/demo.test.mjs)"
node --test --test-reporter=tap test/e2e/demo.test.mjs >"$tmp/e2e.tap" 2>&1 || ts=1
grep -E '^(not )?ok |^# (pass|fail|skip)|# SKIP' "$tmp/e2e.tap"
grep -q '^# fail 0' "$tmp/e2e.tap" || tail -60 "$tmp/e2e.tap" >&2

# The int8 portability test runs the shipped graph on an emulated AVX2-only CPU (QEMU user mode).
if ! command -v qemu-x86_64 >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing qemu-user (Debian) for the int8 portability test"
  { apt-get install -y -qq qemu-user || { apt-get update -qq && apt-get install -y -qq qemu-user; }; } >/dev/null 2>&1 \
    || echo "!! could not install qemu-user: the int8 graph will NOT be checked on an AVX2-only CPU !!" >&2
fi

py=0
if [ -f training/setup.sh ]; then
  echo "== Python: training tests"
  if bash training/setup.sh; then
    training/.venv/bin/python -m pytest training/tests -q 2>&1 | tee "$tmp/pytest.log"
    py=${PIPESTATUS[0]}
  else
    echo "training/setup.sh failed" >&2
    py=1
  fi
else
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
  echo "!! SKIPPED the training tests: training/setup.sh does not exist yet      !!" >&2
  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
fi

echo "== typescript: $([ $ts -eq 0 ] && echo passed || echo FAILED), training: $([ $py -eq 0 ] && echo passed || echo "FAILED ($py)")"
# One closing line over both suites.
node -e '
  const fs = require("fs");
  let p = 0, f = 0, s = 0;
  try { const v = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); p += v.numPassedTests; f += v.numFailedTests; s += v.numPendingTests + (v.numTodoTests || 0); } catch { f += 1; }
  for (const file of process.argv.slice(3)) {
    try {
      const tap = fs.readFileSync(file, "utf8");
      const n = (w) => Number((tap.match(new RegExp("^# " + w + " (\\d+)", "m")) || [0, 0])[1]);
      p += n("pass"); f += n("fail"); s += n("skipped");
    } catch { f += 1; }
  }
  try {
    const log = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").pop();
    const n = (w) => Number((log.match(new RegExp("(\\d+) " + w)) || [0, 0])[1]);
    p += n("passed"); f += n("failed") + n("error"); s += n("skipped");
  } catch {}
  console.log(`total: ${p} passed, ${f} failed, ${s} skipped`);
 ' "$tmp/vitest.json" "$tmp/pytest.log" "$tmp/scripts.tap" "$tmp/e2e.tap" "$tmp/openapi.tap" "$tmp/golden.tap"
[ $ts -eq 0 ] && [ $py -eq 0 ]
