import { describe, expect, it } from 'vitest';
import { ApiError } from '../errors';
import { attentionToImage, faceCrop, parseBox } from './crop';

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

describe('faceCrop', () => {
  it('takes the whole image without a box', () => {
    expect(faceCrop(undefined, 640, 480, 0.4)).toEqual({ x: 0, y: 0, w: 640, h: 480 });
  });

  it('grows the box by the margin on every side', () => {
    expect(faceCrop({ x: 200, y: 100, w: 100, h: 150 }, 640, 480, 0.4)).toEqual({ x: 160, y: 40, w: 180, h: 270 });
  });

  it('clamps to the image', () => {
    expect(faceCrop({ x: 10, y: 10, w: 100, h: 100 }, 150, 120, 0.4)).toEqual({ x: 0, y: 0, w: 150, h: 120 });
  });

  it('rejects a box outside the image with 400', () => {
    expect(() => faceCrop({ x: 700, y: 10, w: 50, h: 50 }, 640, 480, 0.4)).toThrow(/does not overlap/);
    expect(() => faceCrop({ x: -100, y: 10, w: 50, h: 50 }, 640, 480, 0.4)).toThrow(ApiError);
  });
});

describe('attentionToImage', () => {
  it('maps crop fractions to image pixels and orders corners', () => {
    expect(attentionToImage([0.25, 0.5, 0.75, 1], { x: 100, y: 50, w: 200, h: 100 })).toEqual({ x: 150, y: 100, w: 100, h: 50 });
    expect(attentionToImage([0.75, 1, 0.25, 0.5], { x: 0, y: 0, w: 200, h: 100 })).toEqual({ x: 50, y: 50, w: 100, h: 50 });
    expect(attentionToImage([-1, NaN, 2, 0.5], { x: 0, y: 0, w: 10, h: 10 })).toEqual({ x: 0, y: 0, w: 10, h: 5 });
  });
});
