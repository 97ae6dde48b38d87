import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** Each HTTP status the API answers with an error, and the codes it carries. */
export const ERROR_STATUSES = {
  400: { codes: ['bad_request'], description: 'A parameter or the body is malformed (the message says which).' },
  404: { codes: ['not_found'], description: 'No such route.' },
  405: { codes: ['method_not_allowed'], description: 'The path exists but not with this method (see the Allow header).' },
  413: { codes: ['payload_too_large'], description: 'The body is over MAX_BODY_BYTES, or the image over MAX_PIXELS or the decoder memory cap.' },
  415: { codes: ['unsupported_media_type'], description: 'Not JPEG or PNG (the message lists the accepted types).' },
  422: { codes: ['undecodable_image', 'no_face'], description: 'The image could not be decoded, or the detector found no face in it.' },
  429: { codes: ['rate_limited'], description: 'Too many requests from this client; retry after Retry-After seconds.' },
  500: { codes: ['internal'], description: 'A bug; the request id in the body finds its log line.' },
  503: { codes: ['model_unavailable'], description: 'No model (or, without box/crop, no face detector) could be loaded.' },
} as const;

export type ErrorStatus = keyof typeof ERROR_STATUSES;
/** Machine-readable error codes, one per kind of failure a client can act on. */
export type ErrorCode = (typeof ERROR_STATUSES)[ErrorStatus]['codes'][number];

/** A request error that maps to `{ "error": { "code", "message", "request_id" } }` with its status. */
export class ApiError extends HTTPException {
  readonly code: ErrorCode;
  constructor(status: ContentfulStatusCode, code: ErrorCode, message: string, cause?: unknown) {
    super(status, { message, cause });
    this.code = code;
    this.name = 'ApiError';
  }
}

export const badRequest = (message: string) => new ApiError(400, 'bad_request', message);
export const tooLarge = (message: string) => new ApiError(413, 'payload_too_large', message);
export const unsupportedType = (message: string) => new ApiError(415, 'unsupported_media_type', message);
export const undecodable = (message: string) => new ApiError(422, 'undecodable_image', message);
export const noFace = (message: string) => new ApiError(422, 'no_face', message);

/** A client-supplied value quoted in an error message, cut short: messages stay small and
 *  never echo back whatever a client chose to send. */
export const clip = (value: string, max = 100) => (value.length > max ? `${value.slice(0, max)}… (${value.length} characters)` : value);
