import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ErrorCode } from './schemas';

export type { ErrorCode };

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
export const modelUnavailable = (message: string, cause?: unknown) => new ApiError(503, 'model_unavailable', message, cause);

/** A client-supplied value quoted in an error message, cut short: messages stay small and
 *  never echo back whatever a client chose to send. */
export const clip = (value: string, max = 100) => (value.length > max ? `${value.slice(0, max)}… (${value.length} characters)` : value);
