// The composed photos: the same photos for a seed (the benchmark's numbers depend on it), every
// face's true box where its chip was pasted, and the matching of detections to faces.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../../scripts/lib.mjs';
import { H, W, composeFaces, emptyPhotos, matchFaces, truthBox } from './compose-photos.mjs';

const FRAMING = { scale: 1.0859, offset_x: 0.0025, offset_y: -0.0257 };
const DATA = join(ROOT, '..', 'shared', 'data', 'utkface', 'labels.csv');

test('matching takes the best IoU first, one detection per face, none under 0.5', () => {
  const face = (x) => ({ truth: { x, y: 0, w: 100, h: 100 } });
  const found = (x) => ({ box: { x, y: 0, w: 100, h: 100 } });
  // Detection 0 overlaps face 0 at IoU 0.82 and face 1 at 0.25; detection 1 sits on face 1; 2 on nothing.
  const matches = matchFaces([face(0), face(150)], [found(10), found(140), found(400)]);
  assert.deepEqual(matches.map(([i, j]) => [i, j]).sort(), [[0, 0], [1, 1]]);
  assert.ok(matches.every(([, , v]) => v >= 0.5));
  assert.deepEqual(matchFaces([face(0)], [found(60)]), []); // IoU 0.25
});

test('the true box of an upright chip is the framing undone: side chip / scale', () => {
  const b = truthBox(FRAMING, 300, 200, 217.18, 0);
  assert.ok(Math.abs(b.w - 200) < 1e-9 && Math.abs(b.h - 200) < 1e-9);
  assert.ok(Math.abs(b.x + b.w / 2 - (300 - FRAMING.offset_x * 200)) < 1e-9);
  assert.ok(Math.abs(b.y + b.h / 2 - (200 - FRAMING.offset_y * 200)) < 1e-9);
});

test('a seed gives the same photos, every face inside its photo; another seed others', { skip: !existsSync(DATA) && `real faces not found at ${DATA}: skipping` }, () => {
  const digest = (split, seed) => {
    const { faces, photos, r } = composeFaces({ split, faces: 24, seed }, FRAMING);
    const h = createHash('sha1');
    let placed = 0;
    for (const p of photos) {
      h.update(p.bytes);
      for (const f of p.faces) {
        placed++;
        assert.ok(f.cx - f.reach >= 0 && f.cx + f.reach <= W && f.cy - f.reach >= 0 && f.cy + f.reach <= H);
      }
    }
    for (const p of emptyPhotos(r)) h.update(p.bytes);
    assert.equal(placed, faces.length);
    return h.digest('hex');
  };
  assert.equal(digest('test', 1), digest('test', 1));
  assert.notEqual(digest('test', 1), digest('test', 2));
  assert.notEqual(digest('train', 2), digest('test', 2));
});
