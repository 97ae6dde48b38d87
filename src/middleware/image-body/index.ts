import { createMiddleware } from 'hono/factory';
import { readConfig } from '../../config';
import { badRequest, tooLarge, unsupportedType } from '../../errors';

/** What the age route needs from the request: the JPEG bytes and the raw `box` and `crop` parameters. */
export type ImageUpload = { bytes: Uint8Array; box: string | undefined; crop: string | undefined };

export type ImageBodyVariables = { upload: ImageUpload };

const JPEG_TYPES = new Set(['image/jpeg', 'image/jpg', 'image/pjpeg']);
// Sent by clients that do not label the body; the decoder sniffs the bytes instead.
const UNLABELLED = new Set(['', 'application/octet-stream']);

/** Reads at most `max` bytes of the body; a longer body (chunked or lying) is refused with 413. */
async function readCapped(body: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
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

/**
 * Accepts the image as the raw body (image/jpeg) or as the multipart field `image`, with the
 * size checked on Content-Length before anything is read.
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
  if (!isMultipart && !JPEG_TYPES.has(contentType) && !UNLABELLED.has(contentType)) {
    throw unsupportedType(
      `Content-Type ${contentType} is not supported: send the JPEG as the body with Content-Type: image/jpeg, or as the multipart/form-data field "image".`,
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
    if (!JPEG_TYPES.has(type) && !UNLABELLED.has(type)) throw unsupportedType(`The "image" file is ${type}; only image/jpeg is supported.`);
    const text = (name: string) => {
      const v = form.get(name);
      return typeof v === 'string' ? v : c.req.query(name);
    };
    upload = { bytes: new Uint8Array(await field.arrayBuffer()), box: text('box'), crop: text('crop') };
  } else {
    upload = { bytes: raw, box: c.req.query('box'), crop: c.req.query('crop') };
  }
  if (upload.bytes.byteLength === 0) throw badRequest('The request has no image: send a JPEG as the body or as the multipart field "image".');
  c.set('upload', upload);
  await next();
});
