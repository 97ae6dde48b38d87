/** Interleaved 8-bit RGB pixels, row-major, `width * 3` bytes per row. */
export type RgbImage = { width: number; height: number; data: Uint8Array };

/** An axis-aligned rectangle in (fractional) pixels: the API's Rect (src/schemas.ts checks its schema against it). */
export type Rect = { x: number; y: number; w: number; h: number };

/**
 * How a face box becomes the age model's crop (docs/model-contract.md, `framing`): a square of
 * side `scale`·√(w·h) centred on the box's centre moved by `offset_x`, `offset_y` times √(w·h),
 * or, when the detector's keypoints are known and the framing has `keypoints`, on the point
 * halfway between the eyes' midpoint and the mouth moved by those offsets (on the training
 * chips that point varies half as much as the box centre). training/framing.py measured these
 * on the training chips (crop_rect there is the same rule).
 */
export type Framing = { scale: number; offset_x: number; offset_y: number; keypoints?: FramingKeypoints };

/**
 * Where the detector's keypoints lie on a training chip. With a `template` (each keypoint's median
 * place on the chips, in units of the chip's side) a detected face is framed by the similarity
 * (scale, turn, shift) that best carries the template's `template_points` onto the face's
 * keypoints (`frameFace`); without one, from the eyes and mouth by the offsets.
 */
export type FramingKeypoints = { offset_x: number; offset_y: number; template?: [number, number][]; template_points?: number[] };

/** EXIF orientation tag value, 1 (as stored) to 8. */
export type Orientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

/** A decoded photo, its pixels as stored, with the EXIF orientation it is shown in. */
export type DecodedImage = RgbImage & { orientation: Orientation };
