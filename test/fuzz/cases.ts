/**
 * Hostile inputs for POST /v1/age (and the other routes), generated from a seed so every run
 * and every failure can be replayed: `npm run fuzz -- --seed S --only ID`. Shared by the seeded
 * subset inside `npm test` (test/fuzz.test.ts, through the worker in workerd) and by
 * `npm run fuzz` (bench/fuzz.mjs, 10,000+ over HTTP against wrangler dev).
 *
 * Nothing here may depend on workerd or Node: plain TypeScript, run by both.
 */
import { encodeJpeg, exifWithOrientation, makeRgb, pattern } from '../helpers/images.ts';

export type FuzzCase = {
  id: number;
  category: string;
  method: string;
  path: string; // with the query
  headers: Record<string, string>;
  body: Uint8Array | null;
  /** Send the body as a stream in chunks of these sizes (no Content-Length). */
  chunks?: number[];
};

/** mulberry32: small, fast, good enough to spread cases; the same seed gives the same cases. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)); // inclusive
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const bytes = (n: number) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(next() * 256);
    return out;
  };
  return { next, int, pick, bytes };
}
type Rng = ReturnType<typeof rng>;

const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
const u32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];

// ---- PNG, written by hand (stored deflate blocks, so no compressor is needed) -------------
const CRC = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Uint8Array): Uint8Array {
  const td = concat(ascii(type), data);
  return concat(Uint8Array.from(u32(data.length)), td, Uint8Array.from(u32(crc32(td))));
}
function zlibStored(raw: Uint8Array): Uint8Array {
  const blocks: Uint8Array[] = [Uint8Array.from([0x78, 0x01])];
  for (let at = 0; at < raw.length || at === 0; at += 65535) {
    const part = raw.subarray(at, at + 65535);
    const last = at + 65535 >= raw.length ? 1 : 0;
    blocks.push(Uint8Array.from([last, part.length & 0xff, part.length >> 8, ~part.length & 0xff, (~part.length >> 8) & 0xff]), part);
    if (raw.length === 0) break;
  }
  let a = 1, b = 0;
  for (const x of raw) {
    a = (a + x) % 65521;
    b = (b + a) % 65521;
  }
  blocks.push(Uint8Array.from(u32(((b << 16) | a) >>> 0)));
  return concat(...blocks);
}
/** A valid RGB PNG (8 or 16 bits per sample), or one declaring `declared` dimensions. */
export function png(width: number, height: number, opts: { bits?: 8 | 16; declared?: [number, number] } = {}): Uint8Array {
  const bits = opts.bits ?? 8;
  const bpp = 3 * (bits / 8);
  const raw = new Uint8Array(height * (1 + width * bpp));
  for (let y = 0; y < height; y++) for (let x = 0; x < width * bpp; x++) raw[y * (1 + width * bpp) + 1 + x] = (x * 7 + y * 3) & 0xff;
  const [w, h] = opts.declared ?? [width, height];
  const ihdr = Uint8Array.from([...u32(w), ...u32(h), bits, 2, 0, 0, 0]);
  return concat(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlibStored(raw)), chunk('IEND', new Uint8Array(0)));
}

// ---- JPEG surgery --------------------------------------------------------------------------
function segments(jpeg: Uint8Array): { marker: number; start: number; end: number }[] {
  const out: { marker: number; start: number; end: number }[] = [];
  let at = 2;
  while (at + 4 <= jpeg.length && jpeg[at] === 0xff) {
    const marker = jpeg[at + 1]!;
    const len = (jpeg[at + 2]! << 8) | jpeg[at + 3]!;
    out.push({ marker, start: at, end: at + 2 + len });
    if (marker === 0xda) break;
    at += 2 + len;
  }
  return out;
}
/** The same JPEG with its SOF0 frame header rewritten by `edit` (the segment's payload). */
function withSof(jpeg: Uint8Array, edit: (sof: Uint8Array) => Uint8Array, marker = 0xc0): Uint8Array {
  const sof = segments(jpeg).find((s) => s.marker === 0xc0);
  if (!sof) return jpeg;
  const payload = edit(jpeg.slice(sof.start + 4, sof.end));
  return concat(jpeg.subarray(0, sof.start), Uint8Array.from([0xff, marker, ...u16(payload.length + 2)]), payload, jpeg.subarray(sof.end));
}
function withApp1(jpeg: Uint8Array, app1: Uint8Array): Uint8Array {
  return concat(jpeg.subarray(0, 2), Uint8Array.from([0xff, 0xe1, ...u16(app1.length + 2)]), app1, jpeg.subarray(2));
}

export type Seeds = { jpegs: Uint8Array[]; png: Uint8Array; png16: Uint8Array };

export function makeSeeds(): Seeds {
  return {
    jpegs: [
      encodeJpeg(makeRgb(64, 64, pattern), { quality: 80 }),
      encodeJpeg(makeRgb(160, 120, pattern), { quality: 90 }),
      encodeJpeg(makeRgb(48, 96, pattern), { quality: 70, orientation: 6 }),
    ],
    png: png(32, 24),
    png16: png(16, 16, { bits: 16 }),
  };
}

const BAD_BOXES = ['', ',', '1,2,3', '1,2,3,4,5', '-1,0,10,10', '0,0,0,0', '0,0,-5,10', 'NaN,0,1,1', 'Infinity,0,1,1', '1e309,0,1,1', '0x10,0,1,1',
  '99999999999999999999,0,1,1', '5000,5000,10,10', '0,0,100000,100000', '1.5,2.5,3.5,4.5', ' 1, 2, 3, 4', 'a,b,c,d', '%00', '1;2;3;4', '0,0,1,1'.repeat(500),
  '-1000000000,-1000000000,3000000000,3000000000', '0,0,1e15,1e15'];
const BAD_INTS = ['', '-1', '21', '1.5', 'abc', '1e3', '999', '0x5', '00000000000005', '%20', 'NaN', '9'.repeat(400), '5 ', '+5'];
const BAD_MODELS = ['', '../../active', 'al-fixture/1', '%2e%2e%2factive.json', 'x'.repeat(5000), '<script>', 'null'];
const CONTENT_TYPES = ['image/jpeg', 'image/png', 'application/octet-stream', '', 'text/plain', 'application/json', 'multipart/form-data', 'multipart/form-data; boundary=',
  'image/jpeg; charset=utf-8', 'IMAGE/JPEG', 'image/jpeg, image/png', 'application/x-www-form-urlencoded', 'image/*', ';;;', 'a'.repeat(3000)];

function query(r: Rng): string {
  const params: string[] = [];
  if (r.next() < 0.5) params.push(`box=${encodeURIComponent(r.next() < 0.8 ? r.pick(BAD_BOXES) : `${r.int(0, 200)},${r.int(0, 200)},${r.int(1, 200)},${r.int(1, 200)}`)}`);
  if (r.next() < 0.4) params.push(`top_k=${encodeURIComponent(r.next() < 0.7 ? r.pick(BAD_INTS) : String(r.int(0, 20)))}`);
  if (r.next() < 0.3) params.push(`max_faces=${encodeURIComponent(r.pick(BAD_INTS))}`);
  if (r.next() < 0.3) params.push(`model=${encodeURIComponent(r.pick(BAD_MODELS))}`);
  if (r.next() < 0.05) params.push('box=1,2,3,4&box=5,6,7,8');
  return params.length ? `?${params.join('&')}` : '';
}

function flipBits(r: Rng, b: Uint8Array, k: number): void {
  for (; k > 0; k--) {
    const i = r.int(0, b.length - 1);
    b[i] = b[i]! ^ (1 << r.int(0, 7));
  }
}

function mutateJpeg(r: Rng, jpeg: Uint8Array): { category: string; body: Uint8Array } {
  switch (r.int(0, 9)) {
    case 0:
      return { category: 'jpeg-truncated', body: jpeg.slice(0, r.int(0, jpeg.length - 1)) };
    case 1: {
      const b = jpeg.slice();
      flipBits(r, b, r.int(1, 16));
      return { category: 'jpeg-bitflip', body: b };
    }
    case 2: {
      const size = r.int(16, 512);
      const parts: Uint8Array[] = [];
      for (let at = 0; at < jpeg.length; at += size) parts.push(jpeg.subarray(at, at + size));
      for (let i = parts.length - 1; i > 0; i--) {
        const j = r.int(0, i);
        [parts[i], parts[j]] = [parts[j]!, parts[i]!];
      }
      return { category: 'jpeg-chunk-shuffle', body: concat(...parts) };
    }
    case 3: {
      // Decompression bomb: the frame header claims up to 65535 x 65535.
      const w = r.pick([65535, 40000, 8000, 2001, 1]), h = r.pick([65535, 30000, 2001, 1]);
      return { category: 'jpeg-bomb', body: withSof(jpeg, (s) => (s.set([...u16(h), ...u16(w)], 1), s)) };
    }
    case 4: {
      // Progressive frame (SOF2) followed by thousands of tiny scans.
      const n = r.int(50, 3000);
      const sos = Uint8Array.from([0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00]);
      const segs = segments(jpeg);
      const firstScan = segs.find((s) => s.marker === 0xda)!.start;
      const head = withSof(jpeg.subarray(0, firstScan), (s) => s, 0xc2);
      return { category: 'jpeg-progressive-many-scans', body: concat(head, ...Array.from({ length: n }, () => sos), Uint8Array.from([0xff, 0xd9])) };
    }
    case 5:
      // CMYK / 4 components, or 16-bit precision (12/16 are not baseline).
      return r.next() < 0.5
        ? { category: 'jpeg-cmyk', body: withSof(jpeg, (s) => concat(Uint8Array.from([8, s[1]!, s[2]!, s[3]!, s[4]!, 4]), Uint8Array.from([1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1, 4, 0x11, 0]))) }
        : { category: 'jpeg-16bit', body: withSof(jpeg, (s) => (s.set([r.pick([12, 16, 0, 255])], 0), s), r.pick([0xc0, 0xc1, 0xc3])) };
    case 6: {
      // EXIF with absurd orientation or offsets.
      const exif = exifWithOrientation(1, r.next() < 0.5);
      const dv = new DataView(exif.buffer, exif.byteOffset);
      const le = exif[6] === 0x49;
      switch (r.int(0, 3)) {
        case 0: dv.setUint16(6 + 18, r.pick([0, 9, 255, 65535]), le); break; // orientation value
        case 1: dv.setUint32(6 + 4, r.pick([0, 7, 26, 0xffff, 0xffffffff]), le); break; // IFD0 offset
        case 2: dv.setUint16(6 + 8, r.pick([0, 0xffff, 5000]), le); break; // entry count
        case 3: dv.setUint32(6 + 14, 0xffffffff, le); dv.setUint16(6 + 12, r.pick([3, 4, 7, 0]), le); break; // count/type
      }
      const body = r.next() < 0.3 ? withApp1(withApp1(jpeg, exif), exif.subarray(0, r.int(0, exif.length))) : withApp1(jpeg, exif);
      return { category: 'jpeg-exif-absurd', body };
    }
    case 7: {
      // A segment length running past the end, or zero.
      const b = jpeg.slice();
      const seg = r.pick(segments(jpeg));
      b.set(u16(r.pick([0, 1, 2, 0xffff])), seg.start + 2);
      return { category: 'jpeg-bad-length', body: b };
    }
    case 8:
      return { category: 'jpeg-trailing-garbage', body: concat(jpeg, r.bytes(r.int(1, 4096))) };
    default:
      return { category: 'jpeg-valid', body: jpeg };
  }
}

function mutatePng(r: Rng, seeds: Seeds): { category: string; body: Uint8Array } {
  const base = r.next() < 0.3 ? seeds.png16 : seeds.png;
  switch (r.int(0, 3)) {
    case 0: return { category: 'png-truncated', body: base.slice(0, r.int(0, base.length - 1)) };
    case 1: {
      const b = base.slice();
      flipBits(r, b, r.int(1, 8));
      return { category: 'png-bitflip', body: b };
    }
    case 2: return { category: 'png-bomb', body: png(4, 4, { declared: [r.pick([100000, 65535, 0x7fffffff]), r.pick([100000, 65535, 0x7fffffff])] }) };
    default: return { category: r.next() < 0.5 ? 'png-16bit' : 'png-valid', body: base };
  }
}

function multipart(r: Rng, seeds: Seeds): { category: string; headers: Record<string, string>; body: Uint8Array } {
  const boundary = r.pick(['b0undary', 'x', '-'.repeat(70), 'a b', '"quoted"', 'é']);
  const file = r.next() < 0.7 ? r.pick(seeds.jpegs) : r.bytes(r.int(0, 300));
  const parts = [
    `--${boundary}\r\nContent-Disposition: form-data; name="${r.pick(['image', 'picture', 'image"', ''])}"; filename="f.jpg"\r\nContent-Type: ${r.pick(['image/jpeg', 'image/png', 'text/plain', ''])}\r\n\r\n`,
  ];
  let body = concat(ascii(parts[0]!), file, ascii(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="box"\r\n\r\n${r.pick(BAD_BOXES)}\r\n--${boundary}--\r\n`));
  switch (r.int(0, 4)) {
    case 0: body = body.slice(0, r.int(0, body.length)); break; // truncated
    case 1: body = concat(ascii(`--${boundary}\r\n`), ascii('X-Header: ' + 'h'.repeat(r.int(1, 20000)) + '\r\n\r\n'), file); break; // no end, huge header
    case 2: body = ascii(`--${boundary}--\r\n`); break; // no parts
    case 3: body = concat(ascii(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a"\r\n\r\n`), file); break; // no closing boundary
    default: break; // well-formed
  }
  const type = r.pick([`multipart/form-data; boundary=${boundary}`, 'multipart/form-data', `multipart/form-data; boundary="${boundary}"`, `multipart/mixed; boundary=${boundary}`]);
  return { category: 'multipart-malformed', headers: { 'content-type': type }, body };
}

function jsonBody(r: Rng, seeds: Seeds): { category: string; headers: Record<string, string>; body: Uint8Array } {
  const jpeg = r.pick(seeds.jpegs);
  let b64 = '';
  for (let i = 0; i < jpeg.length; i += 3000) b64 += btoa(String.fromCharCode(...jpeg.subarray(i, i + 3000)));
  const text = r.pick([
    JSON.stringify({ image: b64 }),
    JSON.stringify({ image: `data:image/jpeg;base64,${b64}` }),
    JSON.stringify({ image: b64.slice(0, r.int(0, b64.length)) }),
    JSON.stringify({ image: '!!!not base64!!!' }),
    JSON.stringify({ image: 5, box: [1, 2, 3] }),
    '{"image": "' + 'A'.repeat(r.int(0, 5000)),
    '[]', 'null', '', '{', '{"__proto__": {"x": 1}}',
  ]);
  return { category: 'json-base64', headers: { 'content-type': r.pick(['application/json', 'text/plain', 'application/octet-stream', 'image/jpeg']) }, body: ascii(text) };
}

/** `n` cases from `seed`. Case i depends only on (seed, i), so one can be replayed alone. */
export function generate(seed: number, n: number, seeds: Seeds = makeSeeds(), limits = { maxBodyBytes: 8 * 1024 * 1024 }): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (let id = 0; id < n; id++) out.push(generateOne(seed, id, seeds, limits));
  return out;
}

export function generateOne(seed: number, id: number, seeds: Seeds, limits = { maxBodyBytes: 8 * 1024 * 1024 }): FuzzCase {
  const r = rng((seed * 1_000_003 + id * 7919) >>> 0);
  const path = `/v1/age${query(r)}`;
  const base = { id, method: 'POST', path } as const;
  const kind = r.next();
  if (kind < 0.1) return { ...base, category: 'random-bytes', headers: { 'content-type': r.pick(CONTENT_TYPES) }, body: r.bytes(r.pick([0, 1, 2, 3, 16, 1000, r.int(0, 100_000)])) };
  if (kind < 0.55) {
    const m = mutateJpeg(r, r.pick(seeds.jpegs));
    return { ...base, category: m.category, headers: { 'content-type': r.next() < 0.8 ? 'image/jpeg' : r.pick(CONTENT_TYPES) }, body: m.body };
  }
  if (kind < 0.65) {
    const m = mutatePng(r, seeds);
    return { ...base, category: m.category, headers: { 'content-type': r.pick(['image/png', 'image/jpeg', 'application/octet-stream', '']) }, body: m.body };
  }
  if (kind < 0.73) return { ...base, ...multipart(r, seeds) };
  if (kind < 0.78) return { ...base, ...jsonBody(r, seeds) };
  if (kind < 0.86) {
    // Wrong, missing and lying content types and lengths.
    const body = r.next() < 0.5 ? r.pick(seeds.jpegs) : r.bytes(r.int(0, 2000));
    const headers: Record<string, string> = { 'content-type': r.pick(CONTENT_TYPES) };
    const lie = r.pick(['0', '1', String(body.length + r.int(1, 1000)), String(Math.max(0, body.length - r.int(1, 100))), '-1', 'abc', '1e3', String(limits.maxBodyBytes + 1), '99999999999999999999', '']);
    headers['content-length'] = lie;
    return { ...base, category: 'lying-length-or-type', headers, body };
  }
  if (kind < 0.91) {
    // Oversized and chunked bodies (streamed: no Content-Length to refuse them early).
    const total = r.pick([limits.maxBodyBytes + 1, limits.maxBodyBytes + r.int(1, 1 << 20), r.int(1, 50_000)]);
    const jpeg = r.pick(seeds.jpegs);
    const body = new Uint8Array(total);
    body.set(jpeg.subarray(0, Math.min(jpeg.length, total)));
    const chunks: number[] = [];
    for (let left = total; left > 0; ) {
      const c = Math.min(left, r.pick([1, 7, 1024, 65536, 1 << 20]));
      chunks.push(c);
      left -= c;
      if (chunks.length > 4000) {
        chunks.push(left);
        break;
      }
    }
    return { ...base, category: total > limits.maxBodyBytes ? 'oversized-streamed' : 'chunked', headers: { 'content-type': 'image/jpeg' }, body, chunks };
  }
  if (kind < 0.96) {
    // Valid photos with hostile parameters only.
    return { ...base, category: 'bad-params', headers: { 'content-type': 'image/jpeg' }, body: r.pick(seeds.jpegs) };
  }
  // Other routes and methods.
  const method = r.pick(['GET', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'POST']);
  const p = r.pick(['/v1/models', '/healthz', '/', '/docs', '/v1/openapi.json', '/v1/age', '/v1/../v1/age', '/v1/models/../active.json', '/%ff', '/v1/age/' + 'x'.repeat(r.int(1, 3000))]);
  return { id, method, path: p + query(r), category: 'routes-methods', headers: {}, body: method === 'GET' || method === 'HEAD' ? null : r.bytes(r.int(0, 100)) };
}

/** The API's error codes: a 4xx must carry one of these in the one error shape. */
export const ERROR_CODES = new Set(['bad_request', 'not_found', 'method_not_allowed', 'payload_too_large', 'unsupported_media_type', 'undecodable_image', 'no_face', 'rate_limited']);

/**
 * The ages in a /v1/age answer: `faces[].age` (the response with face detection) or the single
 * top-level `age` (before it); undefined when neither is there.
 */
export function agesOf(body: any): unknown[] | undefined {
  if (Array.isArray(body?.faces)) return body.faces.map((f: any) => f?.age);
  return body && 'age' in body ? [body.age] : undefined;
}

/** Why an answer breaks the contract, or undefined when it holds. */
export function checkAnswer(c: FuzzCase, status: number, contentType: string | null, text: string): string | undefined {
  if (status >= 500 || status < 200 || (status >= 300 && status < 400)) return `status ${status}`;
  if (c.method === 'HEAD' || (c.method === 'OPTIONS' && status === 204)) return undefined;
  // The demo page and the API docs page are HTML by design; every other answer is JSON.
  const page = c.path.split('?')[0]!;
  if (status === 200 && c.method === 'GET' && (page === '/' || page === '/docs')) {
    return /^text\/html/.test(contentType ?? '') ? undefined : `content-type ${contentType} for the page ${page}`;
  }
  if (!/^application\/json/.test(contentType ?? '')) return `content-type ${contentType}`;
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    return 'body is not JSON';
  }
  if (status >= 400) {
    if (Object.keys(body).join() !== 'error' || Object.keys(body.error ?? {}).sort().join() !== 'code,message,request_id') return `not the error shape: ${text.slice(0, 200)}`;
    // hono/request-id's own id, or a client's one only when it is a short plain token.
    if (typeof body.error.request_id !== 'string' || !/^[\w\-=]{1,255}$/.test(body.error.request_id)) return `bad request_id: ${text.slice(0, 200)}`;
    if (!ERROR_CODES.has(body.error.code)) return `unknown code ${body.error.code}`;
    if (typeof body.error.message !== "string" || body.error.message.length > 600) return `message missing or too long: ${String(body.error.message).slice(0, 160)}`;
  } else if (c.path.startsWith('/v1/age') && c.method === 'POST') {
    const ages = agesOf(body);
    if (!ages || !ages.every((a) => typeof a === 'number' && a >= 0 && a <= 100)) return `200 without valid ages: ${text.slice(0, 200)}`;
  }
  return undefined;
}

/**
 * Whether `line` (a log line or an error body) carries any of the input's bytes: raw, base64
 * hex or as a list of numbers, in 24-byte windows at a few offsets, plus JPEG/PNG magic and
 * long base64 runs.
 */
export function leaksImage(line: string, body: Uint8Array | null): string | undefined {
  if (/\xff\xd8\xff|\x89PNG|JFIF|Exif\0/.test(line)) return 'image magic';
  // Base64 of image bytes uses most of its alphabet; a long run of one letter (a path of
  // "xxxx…") is not one.
  for (const run of line.match(/[A-Za-z0-9+/]{120,}/g) ?? []) if (new Set(run).size >= 32) return 'a long base64 run';
  if (!body || body.length < 48) return undefined;
  for (const at of [0, Math.floor(body.length / 3), Math.floor(body.length / 2), body.length - 24]) {
    const w = body.subarray(at, at + 24);
    const raw = String.fromCharCode(...w);
    const b64 = btoa(raw).slice(4, 28);
    let hex = '';
    for (const b of w) hex += b.toString(16).padStart(2, '0');
    const decimals = Array.from(w.subarray(0, 12)).join(',');
    if (line.includes(raw) || line.includes(b64) || line.includes(hex) || line.replace(/\s+/g, '').includes(decimals)) return `input bytes at ${at}`;
  }
  return undefined;
}
