import jpegJs from 'jpeg-js/lib/decoder.js';
import { ImageError } from './errors';
import { readJpegHeader, sniffOtherFormat } from './jpeg-header';
import { checkPixels, type DecodeLimits } from './limits';
import { decodePng, isPng } from './png';
import type { DecodedImage } from './types';

export type { DecodeLimits } from './limits';

export type { DecodedImage };

/** The JPEG decoder, reached through an object so tests can count its calls: the limits must refuse before it runs. */
export const jpegDecoder = { decode: jpegJs };

/** The image formats the API reads, as media types. */
export const ACCEPTED_IMAGE_TYPES = ['image/jpeg', 'image/png'] as const;

/**
 * Decodes a JPEG or a PNG, told apart by their bytes, to RGB. The size is checked from the
 * header first, so an oversized image is refused before the decoder allocates anything for it.
 */
export function decodeImage(bytes: Uint8Array, limits: DecodeLimits): DecodedImage {
  if (isPng(bytes)) return decodePng(bytes, limits);
  const other = sniffOtherFormat(bytes);
  if (other) throw new ImageError('unsupported', `The body looks like ${other}; accepted: ${ACCEPTED_IMAGE_TYPES.join(', ')}.`);
  return decodeJpeg(bytes, limits);
}

function decodeJpeg(bytes: Uint8Array, limits: DecodeLimits): DecodedImage {
  const header = readJpegHeader(bytes);
  if (!header) throw new ImageError('undecodable', 'The body is not a readable JPEG image.');
  checkPixels(header.width, header.height, limits);
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpegDecoder.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: true,
      maxResolutionInMP: limits.maxPixels / 1e6,
      maxMemoryUsageInMB: limits.maxMemoryMB,
    });
  } catch (err) {
    // jpeg-js throws Errors and plain strings alike.
    const message = err instanceof Error ? err.message : String(err);
    if (/maxMemoryUsageInMB|maxResolutionInMP|allocate enough memory/.test(message)) {
      throw new ImageError('too_large', 'Decoding this image needs more memory than allowed; send a smaller image.');
    }
    throw new ImageError('undecodable', `The JPEG could not be decoded: ${message.slice(0, 200)}`);
  }
  if (decoded.width !== header.width || decoded.height !== header.height || decoded.data.length !== decoded.width * decoded.height * 3) {
    throw new ImageError('undecodable', 'The JPEG decoded to an unexpected size.');
  }
  return { width: decoded.width, height: decoded.height, data: decoded.data, orientation: header.orientation };
}
