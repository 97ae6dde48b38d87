import { createMiddleware } from 'hono/factory';
import { readConfig } from '../../config';
import { badRequest, clip, tooLarge, unsupportedType } from '../../errors';
import { ACCEPTED_IMAGE_TYPES } from '../../image/decode';

/** What the age route needs from the request: the image bytes and the raw `box` and `crop` parameters. */
export type ImageUpload = { bytes: Uint8Array; box: string | undefined; crop: string | undefined };

export type ImageBodyVariables = { upload: ImageUpload };

// Labels clients put on the formats the decoder reads (it tells them apart by their bytes).
const IMAGE_TYPES = new Set(['image/jpeg', 'image/jpg', 'image/pjpeg', 'image/png', 'image/x-png']);
const ACCEPTED = `${ACCEPTED_IMAGE_TYPES.join(', ')}, or JSON {"image": "<base64 or data: URL>"}`;
// Sent by clients that do not label the body; the decoder sniffs the bytes instead.
const UNLABELLED = new Set(['', 'application/octet-stream']);

/** Reads at most `max` bytes of the body; a longer body (chunked or lying) is refused with 413. */
async function readCapped(body: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch {
      // The client went away mid-upload, or sent fewer bytes than its Content-Length.
      throw badRequest('The request body could not be read to its end (connection closed early, or shorter than its Content-Length).');
    }
    const { done, value } = chunk;
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(`The request body exceeds ${max} bytes.`);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
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

/** `{"image": "<base64>", "box": "x,y,w,h" | [x, y, w, h], "crop": "image"}` from a JSON body. */
function jsonUpload(raw: Uint8Array): ImageUpload {
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(raw));
  } catch {
    throw badRequest('The JSON body could not be parsed.');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The JSON body must be an object {"image": "<base64>"}.');
  const { image, box, crop } = body as { image?: unknown; box?: unknown; crop?: unknown };
  if (typeof image !== 'string') throw badRequest('The JSON body needs "image": a base64 string or a data: URL.');
  let boxText: string | undefined;
  if (Array.isArray(box) && box.length === 4 && box.every((v) => typeof v === 'number')) boxText = box.join(',');
  else if (typeof box === 'string') boxText = box;
  else if (box !== undefined && box !== null) throw badRequest('"box" must be "x,y,w,h" or [x, y, w, h] in image pixels.');
  if (crop !== undefined && crop !== null && typeof crop !== 'string') throw badRequest('"crop" must be a string ("image").');
  return { bytes: decodeBase64Image(image), box: boxText, crop: typeof crop === 'string' ? crop : undefined };
}

/**
 * Accepts the image as the raw body (JPEG or PNG), as the multipart field `image`, or as base64
 * in a JSON body, with the size checked on Content-Length before anything is read.
 */
export const imageBody = createMiddleware<{ Bindings: Env; Variables: ImageBodyVariables }>(async (c, next) => {
  const { maxBodyBytes } = readConfig(c.env);
  const declared = c.req.header('content-length');
  if (declared !== undefined) {
    const n = Number(declared);
    if (!Number.isFinite(n) || n < 0) throw badRequest('Invalid Content-Length.');
    if (n > maxBodyBytes) throw tooLarge(`The request body is ${n} bytes; at most ${maxBodyBytes} are accepted.`);
  }
  const contentType = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  const isMultipart = contentType === 'multipart/form-data';
  const isJson = contentType === 'application/json';
  if (!isMultipart && !isJson && !IMAGE_TYPES.has(contentType) && !UNLABELLED.has(contentType)) {
    throw unsupportedType(
      `Content-Type ${clip(contentType)} is not supported: send the image as the body (${ACCEPTED_IMAGE_TYPES.join(', ')}), as the multipart/form-data field "image", or as JSON {"image": "<base64 or data: URL>"}.`,
    );
  }
  const raw = await readCapped(c.req.raw.body, maxBodyBytes);
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
      return typeof v === 'string' ? v : c.req.query(name);
    };
    upload = { bytes: new Uint8Array(await field.arrayBuffer()), box: text('box'), crop: text('crop') };
  } else if (isJson) {
    upload = jsonUpload(raw);
    upload.box ??= c.req.query('box');
    upload.crop ??= c.req.query('crop');
  } else {
    upload = { bytes: raw, box: c.req.query('box'), crop: c.req.query('crop') };
  }
  if (upload.bytes.byteLength === 0) {
    throw badRequest(`The request has no image: send one as the body (${ACCEPTED}) or as the multipart field "image".`);
  }
  c.set('upload', upload);
  await next();
});
