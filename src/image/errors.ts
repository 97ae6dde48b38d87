/**
 * Why the image layer refuses an image, in its own terms: the HTTP layer (src/middleware/errors)
 * maps each kind to its status and code.
 *   too_large    over the pixel limit or the decoder's memory cap;
 *   undecodable  not a readable JPEG or PNG, or broken inside;
 *   unsupported  another format (GIF, WebP, ...), told by its bytes.
 */
export type ImageErrorKind = 'too_large' | 'undecodable' | 'unsupported';

// No parameter properties: the benchmarks run this file in Node, which only strips types.
export class ImageError extends Error {
  override name = 'ImageError';
  readonly kind: ImageErrorKind;
  constructor(kind: ImageErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}
