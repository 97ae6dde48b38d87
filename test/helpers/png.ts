import { zlibSync } from 'fflate';

/**
 * PNG files built chunk by chunk, for what an encoder library will not write: palettes with
 * transparency, 1-bit grey, Adam7 interlacing, lying headers. Samples are given per pixel;
 * every scanline uses filter 0.
 */
export type PngSpec = {
  width: number;
  height: number;
  depth: number;
  colorType: number; // 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA
  interlaced?: boolean;
  /** Samples of pixel (x, y): one per channel (a palette index for colour type 3). */
  pixel: (x: number, y: number) => number[];
  palette?: [number, number, number][];
  /** tRNS: per palette entry alpha, or the transparent grey / RGB key. */
  transparency?: number[];
  /** Replaces the compressed pixel data (e.g. a bomb). */
  idat?: Uint8Array;
};

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const ADAM7 = [[0, 8, 0, 8], [4, 8, 0, 8], [0, 4, 4, 8], [2, 4, 0, 4], [0, 2, 2, 4], [1, 2, 0, 2], [0, 1, 1, 2]] as const;

/** Filtered scanlines (filter 0) of the pixels at xs × ys, samples packed at `depth` bits. */
function scanlines(spec: PngSpec, xs: number[], ys: number[]): number[] {
  const out: number[] = [];
  for (const y of ys) {
    out.push(0);
    let acc = 0;
    let bits = 0;
    for (const x of xs) {
      for (const s of spec.pixel(x, y)) {
        if (spec.depth === 16) out.push(s >> 8, s & 0xff);
        else if (spec.depth === 8) out.push(s);
        else {
          acc = (acc << spec.depth) | s;
          bits += spec.depth;
          if (bits === 8) (out.push(acc), (acc = 0), (bits = 0));
        }
      }
    }
    if (bits > 0) out.push(acc << (8 - bits));
  }
  return out;
}

const range = (start: number, end: number, step: number) => Array.from({ length: Math.max(0, Math.ceil((end - start) / step)) }, (_, i) => start + i * step);

export function buildPng(spec: PngSpec): Uint8Array {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, spec.width);
  view.setUint32(4, spec.height);
  ihdr.set([spec.depth, spec.colorType, 0, 0, spec.interlaced ? 1 : 0], 8);
  if (!CHANNELS[spec.colorType]) throw new Error(`colour type ${spec.colorType}`);
  const raw = spec.idat
    ? []
    : spec.interlaced
    ? ADAM7.flatMap(([x0, dx, y0, dy]) => {
        const xs = range(x0, spec.width, dx);
        const ys = range(y0, spec.height, dy);
        return xs.length && ys.length ? scanlines(spec, xs, ys) : [];
      })
    : scanlines(spec, range(0, spec.width, 1), range(0, spec.height, 1));
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)];
  if (spec.palette) parts.push(chunk('PLTE', new Uint8Array(spec.palette.flat())));
  if (spec.transparency) {
    const t = spec.colorType === 3 ? new Uint8Array(spec.transparency) : new Uint8Array(spec.transparency.flatMap((v) => [v >> 8, v & 0xff]));
    parts.push(chunk('tRNS', t));
  }
  parts.push(chunk('IDAT', spec.idat ?? zlibSync(new Uint8Array(raw))), chunk('IEND', new Uint8Array(0)));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), (at += p.length));
  return out;
}
