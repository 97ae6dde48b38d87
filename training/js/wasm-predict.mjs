#!/usr/bin/env node
// Runs a model graph over many faces in onnxruntime-web's wasm build, the runtime that serves it,
// so that the numbers a release reports are the ones users get. Driven by the training side
// (training/evaluate.py, predict_wasm), which packs the faces and computes the metrics:
//
//   node training/js/wasm-predict.mjs --model M.onnx --images faces.u8 --size S --out preds.f32 [--batch 16]
//
// faces.u8: N×S×S×3 uint8 RGB (NHWC). An M.onnx.data beside the model is passed as its external
// data. preds.f32: per face, float32 [age, global_age, local_age, box x0 y0 x1 y1, probs…].
//
// The session is set up as in the Worker (bench/lib/ort-node.mjs). Wasm SIMD has no CPU-specific
// kernels (this build uses no relaxed-SIMD instructions), so the answers are the same on every host.
import { readFileSync, writeFileSync } from 'node:fs';
import { CONTRACT, UsageError, fail, parseOptions } from '../../scripts/lib.mjs';
import { createNodeSession, ort } from '../../bench/lib/ort-node.mjs';

function parseArgs(argv) {
  const { values } = parseOptions(argv, { model: { type: 'string' }, images: { type: 'string' }, out: { type: 'string' }, size: { type: 'string' }, batch: { type: 'string' } });
  const opts = { model: values.model, images: values.images, out: values.out, size: Number(values.size), batch: Number(values.batch ?? 16) };
  if (!opts.model || !opts.images || !opts.out || !(opts.size > 0) || !(opts.batch > 0)) {
    throw new UsageError('usage: wasm-predict.mjs --model M.onnx --images faces.u8 --size S --out preds.f32 [--batch B]');
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const session = await createNodeSession(opts.model);
  const pixels = readFileSync(opts.images);
  const faceBytes = opts.size * opts.size * 3;
  if (pixels.length % faceBytes !== 0) throw new UsageError(`${opts.images} is not a whole number of ${opts.size}x${opts.size}x3 faces`);
  const n = pixels.length / faceBytes;

  const rows = [];
  for (let start = 0; start < n; start += opts.batch) {
    const count = Math.min(opts.batch, n - start);
    const batch = new Uint8Array(pixels.buffer, pixels.byteOffset + start * faceBytes, count * faceBytes);
    const out = await session.run({ image: new ort.Tensor('uint8', batch, [count, opts.size, opts.size, 3]) }, CONTRACT.outputs);
    const ages = out.probs.dims[1];
    for (let i = 0; i < count; i++) {
      rows.push(Float32Array.of(out.age.data[i], out.global_age.data[i], out.local_age.data[i],
        ...out.box.data.subarray(i * 4, i * 4 + 4), ...out.probs.data.subarray(i * ages, (i + 1) * ages)));
    }
    for (const t of Object.values(out)) t.dispose();
  }
  await session.release();
  const flat = new Float32Array(rows.reduce((s, r) => s + r.length, 0));
  let at = 0;
  for (const r of rows) { flat.set(r, at); at += r.length; }
  writeFileSync(opts.out, new Uint8Array(flat.buffer));
}

main().catch((err) => fail(err instanceof UsageError ? err.message : err.stack ?? String(err)));
