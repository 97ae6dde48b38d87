import { describe, expect, it } from 'vitest';
import { attentionToImage, boxOverlaps, eyeRoll, frameFace, framedCrop, parseBox, similarity } from './crop';
import type { Framing } from './types';

describe('parseBox', () => {
  it('reads four numbers', () => {
    expect(parseBox('10,20.5, 30 ,40')).toEqual({ x: 10, y: 20.5, w: 30, h: 40 });
    expect(parseBox(undefined)).toBeUndefined();
    expect(parseBox('')).toBeUndefined();
  });

  // The route's 400 with this message: test/inputs.test.ts and test/api.test.ts.
  it.each(['1,2,3', '1,2,3,4,5', 'a,b,c,d', '1,2,0,4', '1,2,3,-4', '1,2,Infinity,4', '0x10,2,3,4', '1,,3,4'])('rejects %j, saying what is wrong', (raw) => {
    expect(() => parseBox(raw)).toThrow(/box must be four numbers|box width and height must be positive/);
    expect(() => parseBox(raw)).toThrow(RangeError);
  });
});

describe('framedCrop', () => {
  it('is the square of scale × √(w·h) around the box centre moved by the offsets', () => {
    expect(framedCrop({ x: 200, y: 100, w: 100, h: 100 }, { scale: 1.8, offset_x: 0, offset_y: 0 })).toEqual({ x: 160, y: 60, w: 180, h: 180 });
    // A 100×400 box has √(w·h) = 200: a 250 px square, 25 px right and 50 px up of the centre.
    expect(framedCrop({ x: 0, y: 0, w: 100, h: 400 }, { scale: 1.25, offset_x: 0.125, offset_y: -0.25 })).toEqual({ x: -50, y: 25, w: 250, h: 250 });
  });

  it('centres on the eyes and mouth when the keypoints are known and the framing has keypoint offsets', () => {
    const framing = { scale: 1, offset_x: 0.5, offset_y: 0.5, keypoints: { offset_x: 0, offset_y: -0.25 } };
    // eyes at (40, 40) and (60, 40), mouth at (50, 80): halfway between (50, 40) and (50, 80) is (50, 60)
    const kp: [number, number][] = [[40, 40], [60, 40], [50, 60], [50, 80], [30, 50], [70, 50]];
    expect(framedCrop({ x: 0, y: 0, w: 100, h: 100 }, framing, 0, kp)).toEqual({ x: 0, y: -15, w: 100, h: 100 });
    // Without keypoints (a caller's box), or a framing without keypoint offsets: the box rule.
    expect(framedCrop({ x: 0, y: 0, w: 100, h: 100 }, framing)).toEqual({ x: 50, y: 50, w: 100, h: 100 });
    expect(framedCrop({ x: 0, y: 0, w: 100, h: 100 }, { scale: 1, offset_x: 0, offset_y: 0 }, 0, kp)).toEqual({ x: 0, y: 0, w: 100, h: 100 });
  });

  it('is not clamped to the image (the resize pads instead)', () => {
    expect(framedCrop({ x: 0, y: 0, w: 50, h: 50 }, { scale: 2, offset_x: 0, offset_y: 0 })).toEqual({ x: -25, y: -25, w: 100, h: 100 });
  });
});

describe('eyeRoll', () => {
  it('is the tilt of the eye line, 0 under the threshold', () => {
    expect(eyeRoll([[100, 100], [140, 100 + 40 * Math.tan(Math.PI / 9)]])).toBeCloseTo(Math.PI / 9, 12); // 20°
    expect(eyeRoll([[100, 100], [140, 90]])).toBeCloseTo(-Math.atan2(10, 40), 12); // -14°
    expect(eyeRoll([[100, 100], [140, 103]])).toBe(0); // 4.3°: as level as the training chips
    expect(eyeRoll([])).toBe(0);
  });

  it('turns the framing offsets with the face', () => {
    const c = framedCrop({ x: 0, y: 0, w: 100, h: 100 }, { scale: 1, offset_x: 0, offset_y: -0.25 }, Math.PI / 2);
    // "up" for a face turned a quarter clockwise is +x in the image
    expect(c.x + c.w / 2).toBeCloseTo(75, 9);
    expect(c.y + c.h / 2).toBeCloseTo(50, 9);
  });
});

// Where BlazeFace's six keypoints lie on a chip (units of the chip's side): eyes, nose, mouth, ears.
const TEMPLATE: [number, number][] = [[0.37, 0.44], [0.63, 0.44], [0.5, 0.57], [0.5, 0.7], [0.22, 0.49], [0.78, 0.49]];
const templateFraming: Framing = { scale: 1.09, offset_x: 0, offset_y: -0.03, keypoints: { offset_x: 0, offset_y: -0.01, template: TEMPLATE, template_points: [0, 1, 2, 3] } };
/** The template carried by x' = s·R(a)·x + t. */
const carry = (s: number, a: number, tx: number, ty: number, pts = TEMPLATE): [number, number][] =>
  pts.map(([x, y]) => [s * (Math.cos(a) * x - Math.sin(a) * y) + tx, s * (Math.sin(a) * x + Math.cos(a) * y) + ty]);

describe('similarity and frameFace', () => {
  it('recover a known similarity transform from keypoints', () => {
    for (const [s, deg, tx, ty] of [[180, 0, 40, 60], [95.5, 23, -12, 300], [400, -35, 1000, 20], [60, 170, 5, 5]] as const) {
      const got = similarity(TEMPLATE, carry(s, (deg * Math.PI) / 180, tx, ty), [0, 1, 2, 3]);
      expect(got.scale).toBeCloseTo(s, 9);
      expect((got.angle * 180) / Math.PI).toBeCloseTo(deg, 9);
      expect(got.tx).toBeCloseTo(tx, 9);
      expect(got.ty).toBeCloseTo(ty, 9);
    }
  });

  it('fits the least-squares answer when the points disagree: noise on one point moves it a little', () => {
    const pts = carry(200, 0, 100, 100);
    pts[3] = [pts[3]![0] + 4, pts[3]![1]];
    const got = similarity(TEMPLATE, pts, [0, 1, 2, 3]);
    expect(Math.abs(got.scale - 200)).toBeLessThan(4);
    expect(Math.abs((got.angle * 180) / Math.PI)).toBeLessThan(3);
  });

  it('frames the chip square: a face carried by a known transform gives that square and turn', () => {
    const s = 240, a = (30 * Math.PI) / 180;
    const kp = carry(s, a, 500, 100);
    const { crop, roll } = frameFace({ x: 0, y: 0, w: 1, h: 1 }, kp, templateFraming);
    expect((roll * 180) / Math.PI).toBeCloseTo(30, 6);
    expect(crop.w).toBeCloseTo(s, 6);
    expect(crop.h).toBeCloseTo(s, 6);
    // The chip's centre (0.5, 0.5) carried by the same transform.
    const [[cx, cy]] = carry(s, a, 500, 100, [[0.5, 0.5]]) as [[number, number]];
    expect(crop.x + crop.w / 2).toBeCloseTo(cx, 6);
    expect(crop.y + crop.h / 2).toBeCloseTo(cy, 6);
  });

  it('turns a synthetic face tilted 30° upright to within 2°, with noisy keypoints', () => {
    let seed = 7;
    const noise = () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5) * 2; // ±1 px on a 150 px face
    for (const deg of [30, -30]) {
      const kp = carry(150, (deg * Math.PI) / 180, 300, 200).map(([x, y]) => [x + noise(), y + noise()] as [number, number]);
      const { roll } = frameFace({ x: 0, y: 0, w: 1, h: 1 }, kp, templateFraming);
      expect(Math.abs((roll * 180) / Math.PI - deg)).toBeLessThan(2);
    }
  });

  it('leaves a nearly level face upright, and frames by the box without a template', () => {
    expect(frameFace({ x: 0, y: 0, w: 1, h: 1 }, carry(150, (5 * Math.PI) / 180, 0, 0), templateFraming).roll).toBe(0);
    const box = { x: 100, y: 100, w: 100, h: 100 };
    const plain: Framing = { scale: 1.2, offset_x: 0, offset_y: 0 };
    expect(frameFace(box, undefined, plain)).toEqual({ crop: framedCrop(box, plain), roll: 0 });
    const tilted = carry(100, (20 * Math.PI) / 180, 100, 100);
    expect(frameFace(box, tilted, plain).roll).toBeCloseTo(eyeRoll(tilted), 12);
  });
});

describe('boxOverlaps', () => {
  it('accepts a box that overlaps the image, even past its edge', () => {
    expect(boxOverlaps({ x: 600, y: 450, w: 100, h: 100 }, 640, 480)).toBe(true);
  });

  it('refuses a box outside the image (the route answers 400: test/api.test.ts)', () => {
    expect(boxOverlaps({ x: 700, y: 10, w: 50, h: 50 }, 640, 480)).toBe(false);
    expect(boxOverlaps({ x: -100, y: 10, w: 50, h: 50 }, 640, 480)).toBe(false);
  });
});

describe('attentionToImage', () => {
  it('maps crop fractions to image pixels and orders corners', () => {
    expect(attentionToImage([0.25, 0.5, 0.75, 1], { x: 100, y: 50, w: 200, h: 100 })).toEqual({ x: 150, y: 100, w: 100, h: 50 });
    expect(attentionToImage([0.75, 1, 0.25, 0.5], { x: 0, y: 0, w: 200, h: 100 })).toEqual({ x: 50, y: 50, w: 100, h: 50 });
    expect(attentionToImage([-1, NaN, 2, 0.5], { x: 0, y: 0, w: 10, h: 10 })).toEqual({ x: 0, y: 0, w: 10, h: 5 });
  });
});
