import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors';
import { attentionToImage, checkBoxInside, eyeRoll, framedCrop, parseBox } from './crop';

describe('parseBox', () => {
  it('reads four numbers', () => {
    expect(parseBox('10,20.5, 30 ,40')).toEqual({ x: 10, y: 20.5, w: 30, h: 40 });
    expect(parseBox(undefined)).toBeUndefined();
    expect(parseBox('')).toBeUndefined();
  });

  it.each(['1,2,3', '1,2,3,4,5', 'a,b,c,d', '1,2,0,4', '1,2,3,-4', '1,2,Infinity,4', '0x10,2,3,4', '1,,3,4'])('rejects %j with 400', (raw) => {
    try {
      parseBox(raw);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(400);
    }
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

describe('checkBoxInside', () => {
  it('accepts a box that overlaps the image, even past its edge', () => {
    expect(() => checkBoxInside({ x: 600, y: 450, w: 100, h: 100 }, 640, 480)).not.toThrow();
  });

  it('rejects a box outside the image with 400', () => {
    expect(() => checkBoxInside({ x: 700, y: 10, w: 50, h: 50 }, 640, 480)).toThrow(/does not overlap/);
    expect(() => checkBoxInside({ x: -100, y: 10, w: 50, h: 50 }, 640, 480)).toThrow(ApiError);
  });
});

describe('attentionToImage', () => {
  it('maps crop fractions to image pixels and orders corners', () => {
    expect(attentionToImage([0.25, 0.5, 0.75, 1], { x: 100, y: 50, w: 200, h: 100 })).toEqual({ x: 150, y: 100, w: 100, h: 50 });
    expect(attentionToImage([0.75, 1, 0.25, 0.5], { x: 0, y: 0, w: 200, h: 100 })).toEqual({ x: 50, y: 50, w: 100, h: 50 });
    expect(attentionToImage([-1, NaN, 2, 0.5], { x: 0, y: 0, w: 10, h: 10 })).toEqual({ x: 0, y: 0, w: 10, h: 5 });
  });
});
