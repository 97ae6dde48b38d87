// Tiles for faces too small for one detector pass: where they lie, which to read, and how their
// faces join the whole photo's. No onnxruntime here (src/config.ts reads TILE_LEVELS).
import type { Rect } from '../image/types';
import type { Detection } from './decode';

/** Tiles are not worth it below this side: the faces they would add are too small to age. */
const MIN_TILE = 160;

/**
 * BlazeFace (short range) finds faces down to about 1/6 of its input's side, so one pass over a
 * photo misses faces under 1/6 of the long side. Each further level reads overlapping tiles of
 * this fraction of the long side, where those faces are 2× and 4× as large: a face of 4 % of the
 * long side (a row of sixteen people) is ~20 px in a quarter tile's 128 px input. Measured on
 * composed group photos of val faces by training/scripts/detector_strategies.py.
 */
export const TILE_LEVELS = [1 / 2, 1 / 4] as const;

/**
 * One level's tiles: squares of `fraction` of the long side, overlapping by at least a third,
 * covering the image. A face is found whole in some tile when it is under a third of the tile.
 */
export function tileRects(width: number, height: number, fraction: number = TILE_LEVELS[0]): Rect[] {
  const t = Math.ceil(Math.max(width, height) * fraction);
  if (t < MIN_TILE) return [];
  const starts = (len: number) => {
    if (len <= t) return [(len - t) / 2];
    const n = Math.ceil((len - t) / ((2 * t) / 3)) + 1;
    return Array.from({ length: n }, (_, i) => ((len - t) * i) / (n - 1));
  };
  const out: Rect[] = [];
  for (const y of starts(height)) for (const x of starts(width)) out.push({ x, y, w: t, h: t });
  return out;
}

/** A face this sure is no merged row of small faces (those score 0.50-0.52 on bench:photos' groups). */
const CONFIDENT = 0.75;

/**
 * The score a face found only in the finest tiles needs: there a patch of a dress or a wine glass
 * fills as much of the input as a face, and scored 0.53-0.62 in face-api's demo photos, where
 * the faces scored 0.64 and more.
 */
export const FINEST_TILE_SCORE = 0.65;

/**
 * Whether the finest tiles are worth reading at all: not once a confident face of a quarter of
 * the long side or more is found. Such a photo is a portrait or a selfie, whose other faces the
 * half tiles find; so a selfie costs no more than before the finest tiles.
 */
export function needsFinestTiles(found: readonly Detection[], width: number, height: number): boolean {
  return !found.some((d) => d.score >= CONFIDENT && d.box.w >= Math.max(width, height) / 4);
}

/**
 * Whether a tile is worth reading: not when more than half of it lies within confident faces
 * already found that are too large for it (over half the tile: a tile finds only smaller ones),
 * each taken twice its box's size (the head, hair and shoulders around a face hold no other
 * face). So a selfie that fills the frame reads few of the finest tiles, and a group photo, whose
 * faces are all small, reads them all.
 */
export function tileHasRoom(tile: Rect, found: readonly Detection[]): boolean {
  const large = found.filter((d) => d.box.w > tile.w / 2 && d.score >= CONFIDENT);
  if (large.length === 0) return true;
  const step = tile.w / 16;
  let covered = 0;
  for (let i = 0; i < 16; i++)
    for (let j = 0; j < 16; j++) {
      const x = tile.x + (i + 0.5) * step, y = tile.y + (j + 0.5) * step;
      if (large.some(({ box: b }) => Math.abs(x - (b.x + b.w / 2)) <= b.w && Math.abs(y - (b.y + b.h / 2)) <= b.h)) covered++;
    }
  return covered <= 128;
}

const intersection = (a: Rect, b: Rect) =>
  Math.max(0, Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x)) * Math.max(0, Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y));

/** Intersection over union of two rectangles. */
export const rectIou = (a: Rect, b: Rect) => {
  const i = intersection(a, b);
  return i / (a.w * a.h + b.w * b.h - i);
};

/**
 * Adds the tiles' faces to the faces found so far. A tile's face counts only if it lies inside
 * the tile (a face cut by the tile's edge gives a partial box) and is under half the tile, and
 * only if it is not already there: more than half of the smaller box covered by a kept face of
 * about its size (sides within 2×). Then a box that holds two or more smaller faces is dropped:
 * one pass over a large photo can merge a row of small faces into one low, false box (measured
 * on the group photos of bench:photos), and a face does not contain two faces; a box that holds
 * one smaller face is the same face found at two sizes, and only the surer one stays.
 */
export function mergeTiles(kept: Detection[], tiles: { tile: Rect; found: Detection[] }[]): Detection[] {
  const candidates = tiles.flatMap(({ tile, found }) => {
    const m = 0.02 * tile.w;
    return found.filter(
      (d) => d.box.x >= tile.x + m && d.box.y >= tile.y + m && d.box.x + d.box.w <= tile.x + tile.w - m && d.box.y + d.box.h <= tile.y + tile.h - m && d.box.w <= tile.w / 2,
    );
  });
  candidates.sort((a, b) => b.score - a.score);
  const merged = [...kept];
  for (const d of candidates) {
    const dup = merged.some((k) => sameSize(k.box, d.box) && intersection(k.box, d.box) > 0.5 * Math.min(k.box.w * k.box.h, d.box.w * d.box.h));
    if (!dup) merged.push(d);
  }
  // What each box holds of the smaller faces: two or more, it is a merged row; one, the two are
  // one face seen at two sizes (a face and a shoulder, say), and the surer of them stays.
  const inside = (k: Detection) => merged.filter((d) => d !== k && d.box.w < k.box.w / 2 && intersection(k.box, d.box) > 0.8 * d.box.w * d.box.h);
  const dropped = new Set<Detection>();
  for (const k of merged) {
    const held = inside(k);
    if (held.length >= 2) dropped.add(k);
    else if (held.length === 1) dropped.add(held[0]!.score > k.score ? k : held[0]!);
  }
  return merged.filter((d) => !dropped.has(d));
}

const sameSize = (a: Rect, b: Rect) => Math.max(a.w, b.w) <= 2 * Math.min(a.w, b.w);
