import { attentionToImage, faceCrop } from '../image/crop';
import type { DecodedImage } from '../image/decode';
import { orientedSize, rectToStored } from '../image/orientation';
import { resizeCrop } from '../image/resize';
import type { Rect } from '../image/types';
import type { AgeModel } from './age-model';
import { centralInterval, groupProbabilities, mostLikelyGroup, round1, topK } from './distribution';

/** The body of a successful `POST /v1/age`. */
export type AgeResult = {
  age: number;
  range: { low: number; high: number; level: number };
  group: { label: string; probability: number };
  groups: { label: string; probability: number }[];
  top_k: { age: number; probability: number }[];
  global_age: number;
  local_age: number;
  attention: Rect;
  crop: Rect;
  image: { width: number; height: number; orientation: number };
  model: { name: string; version: string; fallback: boolean };
};

const RANGE_LEVEL = 0.8;
const roundRect = (r: Rect): Rect => ({ x: round1(r.x), y: round1(r.y), w: round1(r.w), h: round1(r.h) });

/**
 * One face: crop (with the manifest's margin) in displayed coordinates, resize to S×S,
 * run the model, and read the distribution out. Coordinates in and out are pixels of the
 * image as displayed, i.e. after its EXIF orientation.
 */
export async function predictAge(model: AgeModel, image: DecodedImage, box: Rect | undefined, k: number, fallback: boolean): Promise<AgeResult> {
  const m = model.manifest;
  const shown = orientedSize(image.width, image.height, image.orientation);
  const crop = faceCrop(box, shown.width, shown.height, m.face_margin);
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
    image: { width: shown.width, height: shown.height, orientation: image.orientation },
    model: { name: m.name, version: m.version, fallback },
  };
}
