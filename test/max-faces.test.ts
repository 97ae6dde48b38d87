import { env } from 'cloudflare:test';
import { describe, expect, it, vi } from 'vitest';
import { createApp } from '../src/app';
import type { Registries } from '../src/registries';
import type { Detection } from '../src/detector/face-detector';
import { jpegDecoder } from '../src/image/decode';
import type { AgeModel } from '../src/model/age-model';
import type { Manifest } from '../src/registry/manifest';
import { encodeJpeg, makeRgb, pattern } from './helpers/images';

// MAX_FACES / max_faces bound the age-model runs of one request (each ~0.1 s): the faces past
// the cap must never reach the model, not merely be cut from the answer. A fake detector finds
// 8 faces; a fake age model counts its runs.
const S = 16;
const manifest = {
  schema: 1, name: 'counting', version: '1',
  input: { name: 'image', size: S, dtype: 'uint8', layout: 'NHWC', color: 'RGB' },
  outputs: ['age', 'probs', 'global_age', 'local_age', 'box'],
  face_margin: 0.4, ages: { min: 0, max: 100 }, model: 'm.onnx', files: [],
} as unknown as Manifest;

function countingRegistries() {
  const counts = { detect: 0, run: 0 };
  const probs = new Float32Array(101).fill(1 / 101);
  const model: AgeModel = {
    manifest,
    async run() {
      counts.run++;
      return { age: 50, probs, globalAge: 50, localAge: 50, box: new Float32Array([0, 0, 1, 1]) };
    },
    release: async () => undefined,
  };
  // Eight faces of different sizes in a 400x200 photo, the largest last.
  const faces: Detection[] = Array.from({ length: 8 }, (_, i) => ({
    box: { x: 10 + i * 48, y: 40, w: 20 + i * 3, h: 20 + i * 3 },
    score: 0.9,
    keypoints: [],
  }));
  const detector = {
    manifest: { name: 'fake-detector', version: '1' },
    async detect() {
      counts.detect++;
      return faces.map((f) => ({ ...f, box: { ...f.box } }));
    },
    async refine(_image: unknown, face: Detection) {
      return face;
    },
    release: async () => undefined,
  };
  const lease = <M>(m: M) => ({ acquire: async () => ({ model: m, fallback: false, release() {} }) });
  const registries = { age: lease(model), detector: lease(detector) } as unknown as Registries;
  return { registries, counts };
}

const photo = encodeJpeg(makeRgb(400, 200, pattern));

async function ask(query: string, vars: Partial<Env> = {}) {
  const { registries, counts } = countingRegistries();
  const app = createApp(() => registries);
  const res = await app.fetch(
    new Request(`http://localhost/v1/age${query}`, { method: 'POST', body: photo, headers: { 'content-type': 'image/jpeg' } }),
    { ...env, ...vars } as Env,
  );
  const body = (await res.json()) as { faces?: { box: { w: number } }[]; faces_detected?: number; other_faces?: { box: { w: number }; score: number }[] };
  return { status: res.status, body, counts };
}

describe('max_faces caps the age-model runs, not just the answer', () => {
  it('runs the model once per face up to max_faces, the largest faces first', async () => {
    const r = await ask('?max_faces=3');
    expect(r.status).toBe(200);
    expect(r.counts).toEqual({ detect: 1, run: 3 });
    expect(r.body.faces_detected).toBe(8);
    expect(r.body.faces!.map((f) => f.box.w)).toEqual([41, 38, 35]);
    // The faces beyond max_faces are listed, largest first, with their boxes but no age.
    expect(r.body.other_faces!.map((f) => f.box.w)).toEqual([32, 29, 26, 23, 20]);
    expect(r.body.other_faces!.every((f) => !('age' in f) && f.score > 0)).toBe(true);
  });

  it('MAX_FACES is the default, and the cap is MAX_FACES_LIMIT', async () => {
    expect((await ask('')).counts).toEqual({ detect: 1, run: Number(env.MAX_FACES) });
    expect((await ask('', { MAX_FACES: '2' })).counts.run).toBe(2);
    expect((await ask('?max_faces=4', { MAX_FACES_LIMIT: '8' })).counts.run).toBe(4);
  });

  it('a max_faces over MAX_FACES_LIMIT is refused before decoding, detecting or running anything', async () => {
    const decode = vi.spyOn(jpegDecoder, 'decode');
    try {
      const r = await ask(`?max_faces=${Number(env.MAX_FACES_LIMIT) + 1}`);
      expect(r.status).toBe(400);
      expect(r.counts).toEqual({ detect: 0, run: 0 });
      expect(decode).not.toHaveBeenCalled();
      expect((await ask('?max_faces=1')).counts.run).toBe(1);
      expect(decode).toHaveBeenCalledTimes(1);
    } finally {
      decode.mockRestore();
    }
  });
});
