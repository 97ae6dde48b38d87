import { describe, expect, it } from 'vitest';
import { encodeJpeg, facePhoto, makeRgb, orientReference, pattern } from '../../test/helpers/images';
import { fixtureFile, shippedDetector } from '../../test/helpers/worker';
import { decodeImage } from '../image/decode';
import type { Rect } from '../image/types';
import { loadFaceDetector, type Detection, type FaceDetector } from './face-detector';
import { mergeTiles, needsFinestTiles, tileHasRoom, tileRects } from './tiles';
import { parseDetectorManifest } from './manifest';

const limits = { maxPixels: 4_000_000, maxMemoryMB: 64 };

/** training/detector.py formula_tensor: smooth waves per channel, NCHW, no face. */
function formulaTensor(size: number, k: number): Float32Array {
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        out[(c * size + y) * size + x] = Math.sin(x * (0.05 + 0.01 * c) + y * 0.03 * (k + 1) + c) * Math.cos(y * 0.07 - x * 0.02 * k);
      }
  return out;
}

type ModelCase = { formula: number; classificators: number[]; top: number[]; regressors_top: number[][] };

let shared: FaceDetector | undefined;
async function detector(): Promise<FaceDetector> {
  if (!shared) {
    const { manifestText, model } = await shippedDetector();
    const manifest = parseDetectorManifest(manifestText);
    shared = await loadFaceDetector(manifest, new Map([[manifest.model, model]]));
  }
  return shared;
}

const iou = (a: Rect, b: Rect) => {
  const ix = Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));
  return (ix * iy) / (a.w * a.h + b.w * b.h - ix * iy);
};
/** The face box of drawFace: ~0.55 of its size, ~0.05 below its centre (see test/helpers/images.ts). */
const drawnBox = (cx: number, cy: number, size: number): Rect => ({ x: cx - 0.275 * size, y: cy + 0.05 * size - 0.275 * size, w: 0.55 * size, h: 0.55 * size });

describe('the shipped face detector in workerd', () => {
  it('gives the raw outputs onnxruntime gave in Python (reference.json)', async () => {
    const d = await detector();
    const { manifest } = await shippedDetector();
    const ref = JSON.parse(new TextDecoder().decode((await fixtureFile(`models/detectors/${manifest.name}/${manifest.version}/reference.json`))!)) as { model: ModelCase[] };
    expect(ref.model.length).toBe(2);
    for (const c of ref.model) {
      const out = await d.raw(formulaTensor(d.manifest.input.size, c.formula));
      let worst = 0;
      for (let i = 0; i < c.classificators.length; i++) worst = Math.max(worst, Math.abs(out.classificators[i]! - c.classificators[i]!));
      expect(worst, `formula ${c.formula} classificators`).toBeLessThan(1e-3);
      c.top.forEach((anchor, j) => {
        for (let k = 0; k < 16; k++) expect(Math.abs(out.regressors[anchor * 16 + k]! - c.regressors_top[j]![k]!)).toBeLessThan(1e-3);
      });
    }
  });

  it('finds no face in a pattern and one face where it was drawn', async () => {
    const d = await detector();
    expect(await d.detect(decodeImage(encodeJpeg(makeRgb(640, 480, pattern)), limits), { tileLevels: 2 })).toEqual([]);
    const found = await d.detect(decodeImage(encodeJpeg(facePhoto(640, 480, [{ cx: 400, cy: 200, size: 260 }]), { quality: 95 }), limits));
    expect(found).toHaveLength(1);
    expect(found[0]!.score).toBeGreaterThan(0.7);
    expect(iou(found[0]!.box, drawnBox(400, 200, 260))).toBeGreaterThan(0.6);
  });

  it('maps boxes back through the EXIF orientation to the displayed image', async () => {
    const d = await detector();
    const upright = facePhoto(480, 360, [{ cx: 150, cy: 170, size: 220 }]);
    const want = (await d.detect(decodeImage(encodeJpeg(upright, { quality: 95 }), limits)))[0]!;
    expect(want).toBeDefined();
    for (const [o, inverse] of [[6, 8], [3, 3], [8, 6]] as const) {
      const stored = decodeImage(encodeJpeg(orientReference(upright, inverse), { quality: 95, orientation: o }), limits);
      const got = await d.detect(stored);
      expect(got, `orientation ${o}`).toHaveLength(1);
      expect(iou(got[0]!.box, want.box), `orientation ${o}`).toBeGreaterThan(0.9);
    }
  });

  it('finds small faces only with the tiles', async () => {
    const d = await detector();
    // Three faces of ~60 px boxes: under 1/6 of the long side, too small for one pass at 128 px.
    const faces = [{ cx: 120, cy: 120, size: 110 }, { cx: 330, cy: 300, size: 110 }, { cx: 520, cy: 160, size: 110 }];
    const image = decodeImage(encodeJpeg(facePhoto(640, 480, faces), { quality: 95 }), limits);
    expect((await d.detect(image, { tileLevels: 0 })).length).toBeLessThan(3);
    const found = await d.detect(image, { tileLevels: 1 });
    expect(found).toHaveLength(3);
    for (const f of faces) expect(Math.max(...found.map((x) => iou(x.box, drawnBox(f.cx, f.cy, f.size))))).toBeGreaterThan(0.5);
  });
});

describe('a group photo', () => {
  it('finds all twelve small faces of a row-by-row group (quarter tiles), each once', async () => {
    const d = await detector();
    // Boxes of ~77 px, 4.8 % of the 1600 px long side: ~6 px in the whole-photo pass, ~12 px in a half tile.
    const faces = Array.from({ length: 12 }, (_, i) => ({ cx: 160 + (i % 6) * 256, cy: 380 + Math.floor(i / 6) * 420, size: 140 }));
    const image = decodeImage(encodeJpeg(facePhoto(1600, 1200, faces), { quality: 92 }), limits);
    expect((await d.detect(image, { tileLevels: 1 })).length).toBeLessThan(12);
    const found = await d.detect(image, { tileLevels: 2 });
    expect(found).toHaveLength(12);
    for (const f of faces) expect(found.filter((x) => iou(x.box, drawnBox(f.cx, f.cy, f.size)) > 0.5), `face at ${f.cx},${f.cy}`).toHaveLength(1);
  });
});

describe('refine', () => {
  it('looks at a small face again alone: the same face, its box on it; nothing there leaves a detection as it was', async () => {
    const d = await detector();
    const faces = Array.from({ length: 12 }, (_, i) => ({ cx: 160 + (i % 6) * 256, cy: 380 + Math.floor(i / 6) * 420, size: 140 }));
    const image = decodeImage(encodeJpeg(facePhoto(1600, 1200, faces), { quality: 92 }), limits);
    const found = await d.detect(image, { tileLevels: 2 });
    for (const f of found) {
      const r = await d.refine(image, f);
      const drawn = faces.map((g) => drawnBox(g.cx, g.cy, g.size)).find((b) => iou(b, f.box) > 0.5)!;
      expect(iou(r.box, drawn)).toBeGreaterThan(0.5);
      expect(r.score).toBe(f.score);
      expect(r.keypoints).toHaveLength(6);
    }
    const nothing: Detection = { box: { x: 20, y: 20, w: 40, h: 40 }, score: 0.6, keypoints: [] };
    expect(await d.refine(image, nothing)).toBe(nothing);
  });
});

describe('tiles', () => {
  it('of a quarter of the long side cover a 4:3 photo with 24 tiles, overlapping by a third or more', () => {
    const tiles = tileRects(1600, 1200, 1 / 4);
    expect(tiles).toHaveLength(24);
    expect(tiles.every((t) => t.w === 400 && t.h === 400)).toBe(true);
    expect(tiles.at(-1)).toEqual({ x: 1200, y: 800, w: 400, h: 400 });
    expect(tileRects(600, 400, 1 / 4)).toEqual([]); // a 150 px tile: its faces would be too small to age
  });

  it('of the finest level are not read at all in a portrait: a confident face of a quarter of the long side', () => {
    const face = (w: number, score = 0.9) => ({ box: { x: 100, y: 100, w, h: w }, score, keypoints: [] });
    expect(needsFinestTiles([], 1600, 1200)).toBe(true);
    expect(needsFinestTiles([face(300)], 1600, 1200)).toBe(true); // under a quarter: a group's front row
    expect(needsFinestTiles([face(400)], 1600, 1200)).toBe(false); // a selfie
    expect(needsFinestTiles([face(400, 0.55)], 1600, 1200)).toBe(true); // unsure: perhaps a merged row
  });

  it('are read only where the faces found leave room', () => {
    const tile = { x: 0, y: 0, w: 400, h: 400 };
    const face = (x: number, y: number, w: number) => ({ box: { x, y, w, h: w }, score: 0.9, keypoints: [] });
    expect(tileHasRoom(tile, [])).toBe(true);
    expect(tileHasRoom(tile, [face(1000, 1000, 300)])).toBe(true); // a face elsewhere
    expect(tileHasRoom(tile, [face(100, 100, 100)])).toBe(true); // a small face: twice its box covers a quarter
    // Faces of a group, small enough for the tile to find more like them, however many.
    expect(tileHasRoom(tile, [face(0, 0, 150), face(200, 0, 150), face(0, 200, 150), face(200, 200, 150)])).toBe(true);
    expect(tileHasRoom(tile, [face(50, 50, 300)])).toBe(false); // a selfie's face fills it
    expect(tileHasRoom(tile, [{ ...face(50, 50, 300), score: 0.52 }])).toBe(true); // unsure: perhaps a row of small faces merged
  });

  it('cover the image with squares of half the long side, overlapping by a third or more', () => {
    const tiles = tileRects(640, 480);
    expect(tiles.map((t) => [t.x, t.y, t.w])).toEqual([[0, 0, 320], [160, 0, 320], [320, 0, 320], [0, 160, 320], [160, 160, 320], [320, 160, 320]]);
    expect(tileRects(200, 200)).toEqual([]);
    const wide = tileRects(1920, 1080);
    expect(wide.every((t) => t.w === 960)).toBe(true);
    expect(wide.at(-1)).toEqual({ x: 960, y: 120, w: 960, h: 960 });
  });

  it('keep small tile faces under a large false box, and drop the box that holds them', () => {
    const det = (x: number, y: number, w: number, score = 0.9): Detection => ({ box: { x, y, w, h: w }, score, keypoints: [] });
    // One pass over a 3000 px group photo merged a row of faces into a 1,120 px box (score 0.52).
    const whole = [det(1871, 478, 1120, 0.52), det(100, 100, 300)];
    const tile = { x: 1500, y: 0, w: 1500, h: 1500 };
    const merged = mergeTiles(whole, [{ tile, found: [det(2000, 600, 250), det(2400, 600, 260), det(2623, 558, 296)] }]);
    expect(merged.map((d) => d.box.x).sort((a, b) => a - b)).toEqual([100, 2000, 2400, 2623]);
  });

  it('keep the surer of one face found at two sizes', () => {
    const det = (x: number, y: number, w: number, score = 0.9): Detection => ({ box: { x, y, w, h: w }, score, keypoints: [] });
    const tile = { x: 0, y: 0, w: 1000, h: 1000 };
    // A face and a shoulder in one box (0.6), the face alone in a tile (0.85): the face alone stays.
    expect(mergeTiles([det(100, 100, 400, 0.6)], [{ tile, found: [det(150, 120, 150, 0.85)] }]).map((d) => d.box.w)).toEqual([150]);
    // The other way round: the sure large face stays, the unsure small one inside it goes.
    expect(mergeTiles([det(100, 100, 400, 0.95)], [{ tile, found: [det(150, 120, 150, 0.55)] }]).map((d) => d.box.w)).toEqual([400]);
  });

  it('add a tile face only when it is whole, small and new', () => {
    const det = (x: number, y: number, w: number, score = 0.9): Detection => ({ box: { x, y, w, h: w }, score, keypoints: [] });
    const tile = { x: 0, y: 0, w: 320, h: 320 };
    const whole = [det(100, 100, 200)];
    const merged = mergeTiles(whole, [{ tile, found: [det(120, 120, 100), det(10, 10, 40), det(300, 10, 40), det(20, 200, 170)] }]);
    // kept: the new small face; dropped: the duplicate, the one cut by the tile edge, the one over half the tile
    expect(merged.map((d) => d.box.x)).toEqual([100, 10]);
  });
});
