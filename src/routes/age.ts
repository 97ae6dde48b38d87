import { createRoute, OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../context';
import type { Detection, FaceDetector } from '../detector/face-detector';
import { badRequest, noFace } from '../errors';
import { boxOverlaps, frameFace } from '../image/crop';
import { decodeImage, type DecodedImage } from '../image/decode';
import { orientedSize } from '../image/orientation';
import type { Rect } from '../image/types';
import { limitBody } from '../middleware/body-limit';
import { methodNotAllowed, rejectInvalid } from '../middleware/errors';
import { imageBody, type ImageBodyVariables } from '../middleware/image-body';
import { ageCheckFor, estimateAge, roundRect } from '../model/predict';
import { framingOf } from '../registry/manifest';
import type { Registries, RegistriesFor } from '../registries';
import { AgeFormSchema, AgeJsonBodySchema, AgeQuerySchema, AgeResultSchema, errorResponses, type AgeResult, type FaceResult } from '../schemas';

export type { AgeResult, FaceResult };

const IMAGE_FILE = { schema: { type: 'string', format: 'binary' } } as const;

export const estimateAgeRoute = createRoute({
  method: 'post',
  path: '/',
  summary: 'Ages of the faces in a photo',
  description:
    'Finds the faces (BlazeFace), largest first, and estimates the age of each; or, with box, of that box; or, with crop=image, of the whole image. ' +
    'box and crop may also come as fields of a multipart or JSON body.',
  middleware: [limitBody, imageBody] as const,
  request: {
    query: AgeQuerySchema,
    body: {
      required: true,
      description: 'A JPEG or PNG (at most MAX_BODY_BYTES and MAX_PIXELS): as the body, as the multipart field "image", or as base64 in JSON.',
      // $refs rather than the zod schemas themselves: with those, zod-openapi would read and
      // check the body a second time, with its own 415 and no unlabelled bodies. imageBody
      // validates with the same schemas (registered below).
      content: {
        'image/jpeg': IMAGE_FILE,
        'image/png': IMAGE_FILE,
        'application/octet-stream': IMAGE_FILE,
        'multipart/form-data': { schema: { $ref: '#/components/schemas/AgeForm' } },
        'application/json': { schema: { $ref: '#/components/schemas/AgeJsonBody' } },
      },
    },
  },
  responses: {
    200: { description: 'One entry per face.', content: { 'application/json': { schema: AgeResultSchema } } },
    ...errorResponses(400, 413, 415, 422, 429, 500, 503),
  },
});

/** A count parameter within this deployment's bounds (the schema checked it is a number). */
function withinBounds(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (Number(raw) < min || Number(raw) > max) throw badRequest(`${name} must be an integer from ${min} to ${max}.`);
  return Number(raw);
}

/** A face to age: a detected one is framed from its box and keypoints; a caller's box or crop=image is taken as it is. */
type Face = { box: Rect; score: number | null; keypoints?: [number, number][]; crop?: Rect };

export function ageRoutes(registriesFor: RegistriesFor) {
  const app = new OpenAPIHono<AppEnv & { Variables: ImageBodyVariables }>({ defaultHook: rejectInvalid });
  app.openAPIRegistry.register('AgeJsonBody', AgeJsonBodySchema);
  app.openAPIRegistry.register('AgeForm', AgeFormSchema);

  return app.openapi(estimateAgeRoute, async (c) => {
    const config = c.var.config;
    // Parsed by their schemas: a body's box and crop fields, else the query's.
    const query = c.req.valid('query');
    const upload = c.get('upload');
    const box = upload.box ?? query.box;
    const cropMode = (upload.crop ?? query.crop) === 'image';
    // Check every parameter before the (slow) decode and model load.
    if (box && cropMode) throw badRequest('Send either box or crop=image, not both.');
    const k = withinBounds('top_k', query.top_k, config.topK, 0, config.maxTopK);
    const maxFaces = withinBounds('max_faces', query.max_faces, config.maxFaces, 1, config.maxFacesLimit);
    const over = query.over ?? [];
    const falseAccept = query.false_accept;
    if (falseAccept !== undefined && over.length === 0) throw badRequest('false_accept picks the rule of an age check: send it with over=T.');
    const image = decodeImage(upload.bytes, { maxPixels: config.maxPixels, maxMemoryMB: config.jpegMaxMemoryMB });
    const shown = orientedSize(image.width, image.height, image.orientation);
    const registries = registriesFor(c.env, c.var.config);

    let faces: Face[];
    let detected: number | null = null;
    let others: AgeResult['other_faces'] = [];
    let detector: AgeResult['detector'] = null;
    if (cropMode) {
      const whole = { x: 0, y: 0, w: shown.width, h: shown.height };
      faces = [{ box: whole, score: null, crop: whole }];
    } else if (box) {
      if (!boxOverlaps(box, shown.width, shown.height)) {
        throw badRequest(`box ${box.x},${box.y},${box.w},${box.h} does not overlap the ${shown.width}x${shown.height} image.`);
      }
      faces = [{ box, score: null }];
    } else {
      ({ faces, others, detected, detector } = await detectFaces(registries, image, shown, maxFaces, config.detectorTileLevels, c.var.requestId));
    }

    const tier = query.model || undefined;
    const lease = await (tier ? registries.tiers[tier]! : registries.age).acquire(c.var.requestId);
    try {
      const framing = framingOf(lease.model.manifest);
      const check = ageCheckFor(lease.model.manifest, over, falseAccept);
      const results: FaceResult[] = [];
      // One face at a time: an isolate runs one inference at a time anyway.
      for (const f of faces) {
        const { crop, roll } = f.crop ? { crop: f.crop, roll: 0 } : frameFace(f.box, f.keypoints, framing);
        const estimate = await estimateAge(lease.model, image, crop, k, roll, check, f);
        results.push({ box: roundRect(f.box), score: f.score === null ? null : Math.round(f.score * 1000) / 1000, ...estimate });
      }
      const m = lease.model.manifest;
      const body: AgeResult = {
        faces: results,
        faces_detected: detected,
        other_faces: others,
        image: { width: shown.width, height: shown.height, orientation: image.orientation },
        model: { name: m.name, version: m.version, tier: tier ?? null, fallback: lease.fallback },
        detector,
      };
      c.header('Cache-Control', 'no-store');
      return c.json(body, 200);
    } finally {
      lease.release();
    }
  }).all('/', methodNotAllowed('POST, OPTIONS'));
}

/** Each face that gets an age looked at again alone (one at a time: one session): its box and keypoints frame the crop. */
async function refined(detector: FaceDetector, image: DecodedImage, faces: Detection[]): Promise<Face[]> {
  const out: Face[] = [];
  for (const d of faces) {
    const r = await detector.refine(image, d);
    out.push({ box: r.box, score: r.score, keypoints: r.keypoints });
  }
  return out;
}

/** Every face in the photo, largest first, at most `maxFaces`; 422 when there is none. */
async function detectFaces(registries: Registries, image: DecodedImage, shown: { width: number; height: number }, maxFaces: number, tileLevels: number, requestId: string) {
  const lease = await registries.detector.acquire(requestId);
  try {
    const found = (await lease.model.detect(image, { tileLevels })).sort((a, b) => b.box.w * b.box.h - a.box.w * a.box.h);
    if (found.length === 0) {
      throw noFace(
        `No face was found in the ${shown.width}x${shown.height} image. Send a photo with a face in it, ` +
          'a face box as box=x,y,w,h, or crop=image if the image is already a face crop.',
      );
    }
    const m = lease.model.manifest;
    return {
      faces: await refined(lease.model, image, found.slice(0, maxFaces)),
      others: found.slice(maxFaces).map((d) => ({ box: roundRect(d.box), score: Math.round(d.score * 1000) / 1000 })),
      detected: found.length,
      detector: { name: m.name, version: m.version, fallback: lease.fallback },
    };
  } finally {
    lease.release();
  }
}

