import { createMiddleware } from 'hono/factory';
import { badRequest, clip, unsupportedType } from '../../errors';
import { ACCEPTED_IMAGE_TYPES } from '../../image/decode';
import type { Rect } from '../../image/types';
import { AgeFormFieldsSchema, AgeJsonBodySchema } from '../../schemas';

/** What the age route needs from the body: the image bytes, and `box` and `crop` when the body
 *  carries them as fields (read by their schemas; the route takes the query's otherwise). */
export type ImageUpload = { bytes: Uint8Array; box: Rect | undefined; crop: string | undefined };

export type ImageBodyVariables = { upload: ImageUpload };

// Labels clients put on the formats the decoder reads (it tells them apart by their bytes).
const IMAGE_TYPES = new Set(['image/jpeg', 'image/jpg', 'image/pjpeg', 'image/png', 'image/x-png']);
const ACCEPTED = `${ACCEPTED_IMAGE_TYPES.join(', ')}, or JSON {"image": "<base64 or data: URL>"}`;
// Sent by clients that do not label the body; the decoder sniffs the bytes instead.
const UNLABELLED = new Set(['', 'application/octet-stream']);

/** The whole body (already capped by limitBody); 400 when the client goes away mid-upload. */
async function readBody(body: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  try {
    return new Uint8Array(await new Response(body).arrayBuffer());
  } catch {
    throw badRequest('The request body could not be read to its end (connection closed early, or shorter than its Content-Length).');
  }
}

/** The first problem zod found, as a 400. */
function fields<T>(result: { success: true; data: T } | { success: false; error: { issues: { message: string }[] } }): T {
  if (!result.success) throw badRequest(result.error.issues[0]?.message ?? 'The request is invalid.');
  return result.data;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The bytes of a base64 string or a `data:image/...;base64,` URL, whitespace ignored. */
export function decodeBase64Image(text: string): Uint8Array {
  let payload = text;
  if (text.startsWith('data:')) {
    const comma = text.indexOf(',');
    const meta = comma < 0 ? '' : text.slice(5, comma).toLowerCase();
    if (comma < 0 || !meta.endsWith(';base64')) throw badRequest('A data: URL image must be base64 ("data:image/jpeg;base64,...").');
    const type = meta.slice(0, -';base64'.length);
    if (!IMAGE_TYPES.has(type)) throw unsupportedType(`The data: URL holds ${clip(type)}; accepted: ${ACCEPTED}.`);
    payload = text.slice(comma + 1);
  }
  payload = payload.replace(/\s+/g, '');
  if (payload.length % 4 === 1 || !BASE64.test(payload)) throw badRequest('"image" is not valid base64.');
  let binary: string;
  try {
    binary = atob(payload);
  } catch {
    throw badRequest('"image" is not valid base64.');
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** `{"image": "<base64>", "box": "x,y,w,h" | [x, y, w, h], "crop": "image"}` from a JSON body (AgeJsonBodySchema). */
function jsonUpload(raw: Uint8Array): ImageUpload {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(raw));
  } catch {
    throw badRequest('The JSON body could not be parsed.');
  }
  const { image, box, crop } = fields(AgeJsonBodySchema.safeParse(body));
  return { bytes: decodeBase64Image(image), box: box ?? undefined, crop: crop ?? undefined };
}

/**
 * Accepts the image as the raw body (JPEG or PNG), as the multipart field `image`, or as base64
 * in a JSON body, with the body's box and crop fields. Runs after limitBody.
 */
export const imageBody = createMiddleware<{ Bindings: Env; Variables: ImageBodyVariables }>(async (c, next) => {
  const contentType = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  const isMultipart = contentType === 'multipart/form-data';
  const isJson = contentType === 'application/json';
  if (!isMultipart && !isJson && !IMAGE_TYPES.has(contentType) && !UNLABELLED.has(contentType)) {
    throw unsupportedType(
      `Content-Type ${clip(contentType)} is not supported: send the image as the body (${ACCEPTED_IMAGE_TYPES.join(', ')}), as the multipart/form-data field "image", or as JSON {"image": "<base64 or data: URL>"}.`,
    );
  }
  const raw = await readBody(c.req.raw.body);
  let upload: ImageUpload;
  if (isMultipart) {
    let form: FormData;
    try {
      form = await new Response(raw, { headers: { 'content-type': c.req.header('content-type')! } }).formData();
    } catch {
      throw badRequest('The multipart/form-data body could not be parsed.');
    }
    const field = form.get('image');
    if (field === null) throw badRequest('The multipart body has no "image" field.');
    if (typeof field === 'string') throw badRequest('The "image" field must be a file, not text.');
    const type = field.type.toLowerCase();
    if (!IMAGE_TYPES.has(type) && !UNLABELLED.has(type)) throw unsupportedType(`The "image" file is ${clip(type)}; accepted: ${ACCEPTED_IMAGE_TYPES.join(', ')}.`);
    const text = (name: string) => {
      const v = form.get(name);
      return typeof v === 'string' ? v : undefined;
    };
    const { box, crop } = fields(AgeFormFieldsSchema.safeParse({ box: text('box'), crop: text('crop') }));
    upload = { bytes: new Uint8Array(await field.arrayBuffer()), box, crop };
  } else if (isJson) {
    upload = jsonUpload(raw);
  } else {
    upload = { bytes: raw, box: undefined, crop: undefined };
  }
  if (upload.bytes.byteLength === 0) {
    throw badRequest(`The request has no image: send one as the body (${ACCEPTED}) or as the multipart field "image".`);
  }
  c.set('upload', upload);
  await next();
});
