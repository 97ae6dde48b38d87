import { attentionToImage } from '../image/crop';
import type { DecodedImage } from '../image/decode';
import { rectToStored } from '../image/orientation';
import { resizeCrop } from '../image/resize';
import type { Rect } from '../image/types';
import type { AgeModel } from './age-model';
import { centralInterval, groupProbabilities, mostLikelyGroup, round1, topK } from './distribution';

/** The age model's answer for one face crop (the per-face fields of `POST /v1/age`). */
export type AgeEstimate = {
  age: number;
  range: { low: number; high: number; level: number };
  group: { label: string; probability: number };
  groups: { label: string; probability: number }[];
  top_k: { age: number; probability: number }[];
  global_age: number;
  local_age: number;
  attention: Rect;
  crop: Rect;
};

const RANGE_LEVEL = 0.8;
export const roundRect = (r: Rect): Rect => ({ x: round1(r.x), y: round1(r.y), w: round1(r.w), h: round1(r.h) });

/**
 * One face: resize `crop` (displayed-image pixels, may extend past the image: padded black) to
 * S×S, run the model, and read the distribution out. The attention box comes back in the same
 * displayed-image pixels.
 */
export async function estimateAge(model: AgeModel, image: DecodedImage, crop: Rect, k: number): Promise<AgeEstimate> {
  const m = model.manifest;
  const tensor = resizeCrop(image, rectToStored(crop, image.width, image.height, image.orientation), m.input.size, image.orientation);
  const out = await model.run(tensor);
  const groups = groupProbabilities(out.probs, m.ages.min);
  return {
    age: round1(out.age),
    range: centralInterval(out.probs, RANGE_LEVEL, m.ages.min),
    group: mostLikelyGroup(groups),
    groups,
    top_k: topK(out.probs, k, m.ages.min),
    global_age: round1(out.globalAge),
    local_age: round1(out.localAge),
    attention: roundRect(attentionToImage(out.box, crop)),
    crop: roundRect(crop),
  };
}
