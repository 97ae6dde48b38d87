// A typed client for the age-edge API, built from the app's own route types with hono/client:
// the query, the answers and the error shape are the server's schemas (src/schemas.ts), so a
// change there that breaks a caller breaks `npm run check` here. Runs anywhere fetch does.
import { hc, type ClientRequestOptions, type InferResponseType } from 'hono/client';
import type { AppType } from '../src/app';
import type { ModelTier } from '../src/registry/manifest';
import type { AgeResult, ErrorBody } from '../src/schemas';

export type { AgeResult, ErrorBody, FaceResult } from '../src/schemas';

export const DEFAULT_BASE_URL = 'http://127.0.0.1:8787';

export type EstimateOptions = {
  /** A face box in image pixels: no detection, that box gets an age. */
  box?: [number, number, number, number] | string;
  /** 'image': the whole image is already a face crop. */
  crop?: 'image';
  top_k?: number;
  max_faces?: number;
  /** Ages T (1..99, at most 5): each face gets over: [{age: T, probability: P(age >= T), decision: "pass" | "refer" | null, false_accept}]. */
  over?: number[];
  /** With over: the false-accept target of the rule that decides (e.g. 0.02); absent: the model's
   *  default. A target the model has no rule for is a 400; models() lists them (false_accept_targets). */
  false_accept?: number;
  /** A model tier of the deployment ('fast' or 'accurate'); absent: its default. */
  model?: ModelTier;
  /** The body's Content-Type; by default read from the bytes (JPEG, PNG) or the Blob. */
  type?: string;
};

/** An error answer of the API, with its code and the request id to quote when reporting it. */
export class AgeEdgeError extends Error {
  readonly status: number;
  readonly code: ErrorBody['error']['code'] | 'not_json';
  readonly requestId: string | null;
  constructor(status: number, code: AgeEdgeError['code'], message: string, requestId: string | null) {
    super(message);
    this.name = 'AgeEdgeError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

/** JPEG and PNG by their first bytes; anything else is sent unlabelled and the server sniffs it. */
function contentType(bytes: Uint8Array): string {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'image/jpeg';
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'image/png';
  return 'application/octet-stream';
}

/** The JSON of a successful answer; an error answer is thrown as AgeEdgeError. */
async function unwrap<T>(res: { ok: boolean; status: number; headers: Headers; json(): Promise<unknown> }): Promise<T> {
  const requestId = res.headers.get('x-request-id');
  if (!(res.headers.get('content-type') ?? '').startsWith('application/json')) {
    throw new AgeEdgeError(res.status, 'not_json', `HTTP ${res.status} without a JSON body`, requestId);
  }
  const body = (await res.json()) as T | ErrorBody;
  if (!res.ok) {
    const { error } = body as ErrorBody;
    throw new AgeEdgeError(res.status, error.code, error.message, error.request_id ?? requestId);
  }
  return body as T;
}

export function createClient(baseUrl: string = DEFAULT_BASE_URL, options?: ClientRequestOptions) {
  const api = hc<AppType>(baseUrl, options);
  return {
    /** The typed hono/client itself, for anything the helpers below do not cover. */
    api,

    /** POST /v1/age with the image as the body. */
    async estimateAge(image: Uint8Array | Blob, opts: EstimateOptions = {}): Promise<AgeResult> {
      const bytes = image instanceof Blob ? new Uint8Array(await image.arrayBuffer()) : image;
      const type = opts.type ?? (image instanceof Blob && image.type ? image.type : contentType(bytes));
      const query = {
        top_k: opts.top_k?.toString(),
        max_faces: opts.max_faces?.toString(),
        box: Array.isArray(opts.box) ? opts.box.join(',') : opts.box,
        crop: opts.crop,
        model: opts.model,
        over: opts.over?.length ? opts.over.join(',') : undefined,
        false_accept: opts.false_accept?.toString(),
      };
      const res = await api.v1.age.$post({ query }, { init: { body: bytes, headers: { 'content-type': type } } });
      return unwrap<InferResponseType<typeof api.v1.age.$post, 200>>(res);
    },

    /** GET /v1/models: what is being served. */
    async models() {
      return unwrap<InferResponseType<typeof api.v1.models.$get, 200>>(await api.v1.models.$get());
    },

    /** GET /healthz. */
    async health() {
      return unwrap<InferResponseType<typeof api.healthz.$get, 200>>(await api.healthz.$get());
    },
  };
}
