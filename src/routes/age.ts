import { Hono } from 'hono';
import type { Registries } from '../app';
import { readConfig } from '../config';
import { badRequest, noFace } from '../errors';
import { checkBoxInside, eyeRoll, framedCrop, parseBox } from '../image/crop';
import { decodeImage, type DecodedImage } from '../image/decode';
import { orientedSize } from '../image/orientation';
import type { Rect } from '../image/types';
import { imageBody, type ImageBodyVariables } from '../middleware/image-body';
import { methodNotAllowed } from '../middleware/errors';
import { estimateAge, roundRect, type AgeEstimate } from '../model/predict';
import { framingOf, MODEL_TIERS, type ModelTier } from '../registry/manifest';

/** One face of the answer: where it is, how sure the detector is (null for a caller's box), its age. */
export type FaceResult = { box: Rect; score: number | null } & AgeEstimate;

/** The body of a successful `POST /v1/age`. */
export type AgeResult = {
  faces: FaceResult[];
  /** Faces the detector found, before `max_faces` (null when it did not run). */
  faces_detected: number | null;
  image: { width: number; height: number; orientation: number };
  /** What ran: its name and version, the tier asked for (null: the default), whether it is a fallback. */
  model: { name: string; version: string; tier: ModelTier | null; fallback: boolean };
  detector: { name: string; version: string; fallback: boolean } | null;
};

function parseCount(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d{1,3}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw badRequest(`${name} must be an integer from ${min} to ${max}.`);
  return Number(raw);
}

/** `crop=image`: the photo is already a face chip framed like the training faces. */
function parseCropMode(raw: string | undefined): 'image' | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (raw !== 'image') throw badRequest('crop must be "image" (the whole photo is the face crop) or absent.');
  return 'image';
}

/** `model=fast|accurate`: a tier of active.json; absent: its default. */
export function parseModelTier(raw: string | undefined): ModelTier | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!(MODEL_TIERS as readonly string[]).includes(raw)) {
    throw badRequest(`model must be one of ${MODEL_TIERS.map((t) => `"${t}"`).join(', ')}, or absent for the default model.`);
  }
  return raw as ModelTier;
}

type Face = { box: Rect; score: number | null; roll: number; keypoints?: [number, number][]; crop?: Rect };

export function ageRoutes(registriesFor: (env: Env) => Registries) {
  const app = new Hono<{ Bindings: Env; Variables: ImageBodyVariables }>();

  app.post('/', imageBody, async (c) => {
    const config = readConfig(c.env);
    const upload = c.get('upload');
    // Validate every parameter before the (slow) decode and model load.
    const box = parseBox(upload.box);
    const cropMode = parseCropMode(upload.crop);
    const tier = parseModelTier(c.req.query('model'));
    if (box && cropMode) throw badRequest('Send either box or crop=image, not both.');
    const k = parseCount('top_k', c.req.query('top_k'), config.topK, 0, config.maxTopK);
    const maxFaces = parseCount('max_faces', c.req.query('max_faces'), config.maxFaces, 1, config.maxFacesLimit);
    const image = decodeImage(upload.bytes, { maxPixels: config.maxPixels, maxMemoryMB: config.jpegMaxMemoryMB });
    const shown = orientedSize(image.width, image.height, image.orientation);
    const registries = registriesFor(c.env);

    let faces: Face[];
    let detected: number | null = null;
    let detector: AgeResult['detector'] = null;
    if (cropMode) {
      const whole = { x: 0, y: 0, w: shown.width, h: shown.height };
      faces = [{ box: whole, score: null, roll: 0, crop: whole }];
    } else if (box) {
      checkBoxInside(box, shown.width, shown.height);
      faces = [{ box, score: null, roll: 0 }];
    } else {
      ({ faces, detected, detector } = await detectFaces(registries, image, shown, maxFaces, config.detectorTiles));
    }

    const lease = await (tier ? registries.tiers[tier] : registries.age).acquire();
    try {
      const framing = framingOf(lease.model.manifest);
      const results: FaceResult[] = [];
      // One face at a time: an isolate runs one inference at a time anyway.
      for (const f of faces) {
        const estimate = await estimateAge(lease.model, image, f.crop ?? framedCrop(f.box, framing, f.roll, f.keypoints), k, f.roll);
        results.push({ box: roundRect(f.box), score: f.score === null ? null : Math.round(f.score * 1000) / 1000, ...estimate });
      }
      const m = lease.model.manifest;
      const body: AgeResult = {
        faces: results,
        faces_detected: detected,
        image: { width: shown.width, height: shown.height, orientation: image.orientation },
        model: { name: m.name, version: m.version, tier: tier ?? null, fallback: lease.fallback },
        detector,
      };
      c.header('Cache-Control', 'no-store');
      return c.json(body);
    } finally {
      lease.release();
    }
  });
  app.all('/', methodNotAllowed('POST, OPTIONS'));
  return app;
}

/** Every face in the photo, largest first, at most `maxFaces`; 422 when there is none. */
async function detectFaces(registries: Registries, image: DecodedImage, shown: { width: number; height: number }, maxFaces: number, tiles: boolean) {
  const lease = await registries.detector.acquire();
  try {
    const found = (await lease.model.detect(image, { tiles })).sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h);
    if (found.length === 0) {
      throw noFace(
        `No face was found in the ${shown.width}x${shown.height} image. Send a photo with a face in it, ` +
          'a face box as box=x,y,w,h, or crop=image if the image is already a face crop.',
      );
    }
    const m = lease.model.manifest;
    return {
      faces: found.slice(0, maxFaces).map((d) => ({ box: d.box, score: d.score, roll: eyeRoll(d.keypoints), keypoints: d.keypoints })),
      detected: found.length,
      detector: { name: m.name, version: m.version, fallback: lease.fallback },
    };
  } finally {
    lease.release();
  }
}

