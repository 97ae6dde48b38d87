import type { DecodedImage } from '../image/decode';
import { orientedSize, rectToStored } from '../image/orientation';
import { resizeCrop } from '../image/resize';
import type { Rect } from '../image/types';
import { createSession, ModelLoadError, ort } from '../ort/load';
import { anchors, decode, weightedNms, type Detection, type RawDetection } from './decode';
import type { DetectorManifest } from './manifest';
import { FINEST_TILE_SCORE, mergeTiles, needsFinestTiles, rectIou, TILE_LEVELS, tileHasRoom, tileRects } from './tiles';

export type { Detection } from './decode';

export type DetectOptions = {
  /** How many levels of overlapping tiles (TILE_LEVELS) to read after the whole photo, for faces too small for one pass. */
  tileLevels: number;
};

export interface FaceDetector {
  readonly manifest: DetectorManifest;
  /** Every face above the manifest's score threshold, after suppression, best score first. */
  detect(image: DecodedImage, options?: DetectOptions): Promise<Detection[]>;
  /**
   * The face looked at again, alone: one more pass over a square of REFINE_SPAN times its box
   * around it, where it fills the part of the detector's input it reads best. Its box and
   * keypoints from that pass (the same face: IoU >= 0.3 with the first box; its score stays the
   * first one's), else as it was.
   */
  refine(image: DecodedImage, face: Detection): Promise<Detection>;
  /** Raw outputs for one input tensor (float32 NCHW), for the reference tests. */
  raw(input: Float32Array): Promise<{ regressors: Float32Array; classificators: Float32Array }>;
  release(): Promise<void>;
}

/**
 * The letterbox: the displayed image scaled to fit the detector's square input, centred, the
 * rest black (as MediaPipe feeds BlazeFace). It is the square of side max(w, h) around the
 * image, resized like any crop; the resize pads what lies outside the image with black.
 */
export function letterboxRect(width: number, height: number): Rect {
  const side = Math.max(width, height);
  return { x: (width - side) / 2, y: (height - side) / 2, w: side, h: side };
}

/**
 * The detector's input pixels for a square of the displayed image (the letterbox or a tile; it
 * may reach past the image: black), uint8 RGB NHWC, by the area rule. training/detector.py
 * letterbox_pixels makes the same pixels (test/parity.test.ts).
 */
export function detectorPixels(image: DecodedImage, square: Rect, size: number, out: Uint8Array = new Uint8Array(size * size * 3)): Uint8Array {
  return resizeCrop(image, rectToStored(square, image.width, image.height, image.orientation), size, image.orientation, out);
}

/**
 * The square a face is looked at again in, as a multiple of its box: the face fills a third of
 * the 128 px input (~40 px), where BlazeFace short range places its keypoints best, however small
 * the face was in the photo or tile that found it.
 */
export const REFINE_SPAN = 3;

class OrtFaceDetector implements FaceDetector {
  private readonly anchorXY: Float64Array;
  private readonly pixels: Uint8Array;
  private readonly tensor: Float32Array;

  constructor(readonly manifest: DetectorManifest, private readonly session: ort.InferenceSession) {
    const S = manifest.input.size;
    this.anchorXY = anchors(manifest.anchors, S);
    this.pixels = new Uint8Array(S * S * 3);
    this.tensor = new Float32Array(3 * S * S);
  }

  async raw(input: Float32Array) {
    const S = this.manifest.input.size;
    if (input.length !== 3 * S * S) throw new RangeError(`detector input must be 3x${S}x${S}`);
    const { regressors, classificators } = this.manifest.outputs;
    const out = await this.session.run({ [this.manifest.input.name]: new ort.Tensor('float32', input, [1, 3, S, S]) }, [regressors, classificators]);
    const reg = out[regressors], cls = out[classificators];
    if (!reg || !cls || reg.type !== 'float32' || cls.type !== 'float32') throw new ModelLoadError('detector outputs are missing or not float32');
    // Copies: ORT may reuse its output buffers on the next run.
    const result = { regressors: (reg.data as Float32Array).slice(), classificators: (cls.data as Float32Array).slice() };
    for (const t of Object.values(out)) t.dispose();
    return result;
  }

  async detect(image: DecodedImage, options: DetectOptions = { tileLevels: 0 }): Promise<Detection[]> {
    const shown = orientedSize(image.width, image.height, image.orientation);
    const whole = await this.detectIn(image, letterboxRect(shown.width, shown.height));
    let found = whole;
    for (const [level, fraction] of TILE_LEVELS.slice(0, options.tileLevels).entries()) {
      const finest = level > 0;
      if (finest && !needsFinestTiles(found, shown.width, shown.height)) break;
      const tiles = [];
      for (const tile of tileRects(shown.width, shown.height, fraction)) {
        if (finest && !tileHasRoom(tile, found)) continue;
        const faces = await this.detectIn(image, tile);
        tiles.push({ tile, found: finest ? faces.filter((d) => d.score >= FINEST_TILE_SCORE) : faces });
      }
      found = mergeTiles(found, tiles);
    }
    return found;
  }

  async refine(image: DecodedImage, face: Detection): Promise<Detection> {
    const side = REFINE_SPAN * Math.max(face.box.w, face.box.h);
    const square = { x: face.box.x + face.box.w / 2 - side / 2, y: face.box.y + face.box.h / 2 - side / 2, w: side, h: side };
    let best: Detection | undefined, bestIou = 0.3;
    for (const d of await this.detectIn(image, square)) {
      const v = rectIou(d.box, face.box);
      if (v >= bestIou) [best, bestIou] = [d, v];
    }
    return best ? { ...best, score: face.score } : face;
  }

  /** One pass over a square of the displayed image (it may reach past the image: black). */
  private async detectIn(image: DecodedImage, box: Rect): Promise<Detection[]> {
    const m = this.manifest;
    const S = m.input.size;
    detectorPixels(image, box, S, this.pixels);
    // uint8 NHWC -> float NCHW in the manifest's range.
    const [lo, hi] = m.input.range;
    const k = (hi - lo) / 255;
    const plane = S * S;
    for (let i = 0; i < plane; i++) {
      this.tensor[i] = this.pixels[3 * i]! * k + lo;
      this.tensor[plane + i] = this.pixels[3 * i + 1]! * k + lo;
      this.tensor[2 * plane + i] = this.pixels[3 * i + 2]! * k + lo;
    }
    const { regressors, classificators } = await this.raw(this.tensor);
    const found = weightedNms(decode(regressors, classificators, this.anchorXY, S, m.score_threshold), m.nms_iou);
    return found.map((d) => toImage(d, box));
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** From [0, 1] of the letterboxed input back to displayed-image pixels. */
function toImage(d: RawDetection, lb: Rect): Detection {
  const [x0, y0, x1, y1] = d.box;
  return {
    box: { x: lb.x + x0 * lb.w, y: lb.y + y0 * lb.h, w: (x1 - x0) * lb.w, h: (y1 - y0) * lb.h },
    score: d.score,
    keypoints: d.keypoints.map(([x, y]) => [lb.x + x * lb.w, lb.y + y * lb.h]),
  };
}

/**
 * Creates the detector's session and proves it with one run on a grey input: the output sizes
 * must match the manifest's anchor grid, so a graph that does not fit its manifest is refused
 * at load time and the registry keeps the last good detector.
 */
export async function loadFaceDetector(manifest: DetectorManifest, files: Map<string, Uint8Array>): Promise<FaceDetector> {
  const model = files.get(manifest.model);
  if (!model) throw new ModelLoadError(`model file ${manifest.model} was not loaded`);
  let session: ort.InferenceSession;
  try {
    session = await createSession({ model });
  } catch (err) {
    throw new ModelLoadError(`onnxruntime could not create a session: ${err instanceof Error ? err.message : String(err)}`);
  }
  const detector = new OrtFaceDetector(manifest, session);
  try {
    if (!session.inputNames.includes(manifest.input.name)) {
      throw new ModelLoadError(`graph has no input ${manifest.input.name} (inputs: ${session.inputNames.join(', ')})`);
    }
    const S = manifest.input.size;
    const out = await detector.raw(new Float32Array(3 * S * S));
    const n = anchors(manifest.anchors, S).length / 2;
    if (out.classificators.length !== n || out.regressors.length !== n * 16) {
      throw new ModelLoadError(`graph gives ${out.classificators.length} scores and ${out.regressors.length} regressors; the manifest's anchors need ${n} and ${n * 16}`);
    }
  } catch (err) {
    await session.release().catch(() => undefined);
    if (err instanceof ModelLoadError) throw err;
    throw new ModelLoadError(`test run failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return detector;
}
