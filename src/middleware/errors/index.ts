import type { Hook } from '@hono/zod-openapi';
import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ApiError, badRequest, clip, ERROR_STATUSES, tooLarge, undecodable, unsupportedType, type ErrorCode, type ErrorStatus } from '../../errors';
import { ImageError, type ImageErrorKind } from '../../image/errors';
import { NoDecisionRuleError } from '../../model/calibration';
import { ModelUnavailableError } from '../../registry/registry';
import type { ErrorBody } from '../../schemas';

export type { ErrorBody };

/** The code of an HTTPException that is not an ApiError (Hono's own middleware throws those). */
function codeFor(status: number): ErrorCode {
  const known = ERROR_STATUSES[status as ErrorStatus];
  if (known) return known.codes[0];
  return status < 500 ? 'bad_request' : 'internal';
}

export function errorResponse(c: Context, status: ContentfulStatusCode, code: ErrorCode, message: string): Response {
  c.header('Cache-Control', 'no-store');
  return c.json({ error: { code, message, request_id: c.get('requestId') } } satisfies ErrorBody, status);
}

/** The image layer's refusals, as the API answers them. */
const IMAGE_ERRORS: Record<ImageErrorKind, (message: string) => ApiError> = { too_large: tooLarge, undecodable, unsupported: unsupportedType };

/** The API's answer to a refusal of any layer (HTTP's own, the image's, the model's); undefined for a bug. */
export function asApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof ImageError) return IMAGE_ERRORS[err.kind](err.message);
  if (err instanceof NoDecisionRuleError) return badRequest(err.message);
  return undefined;
}

export const onError: ErrorHandler = (err, c) => {
  const refusal = asApiError(err);
  if (refusal) return errorResponse(c, refusal.status, refusal.code, refusal.message);
  if (err instanceof ModelUnavailableError) return errorResponse(c, 503, 'model_unavailable', err.message);
  if (err instanceof HTTPException) return errorResponse(c, err.status, codeFor(err.status), err.message || 'Request failed.');
  // Only the error itself is logged: never request bodies (they are photos of people).
  console.error(JSON.stringify({ event: 'unhandled_error', request_id: c.get('requestId'), path: c.req.path, name: (err as Error).name, message: (err as Error).message }));
  return errorResponse(c, 500, 'internal', 'Internal error.');
};

export const notFound: NotFoundHandler = (c) => errorResponse(c, 404, 'not_found', `No route for ${clip(c.req.method, 20)} ${clip(c.req.path)}.`);

/** Answers 405 with an Allow header for a known path called with the wrong method. */
export const methodNotAllowed = (allow: string) => (c: Context) => {
  c.header('Allow', allow);
  return errorResponse(c, 405, 'method_not_allowed', `${clip(c.req.method, 20)} is not allowed here; use ${allow}.`);
};

/** zod-openapi's hook after validating a request part: the first problem becomes a 400 in the one error shape. */
export const rejectInvalid: Hook<unknown, any, any, unknown> = (result) => {
  if (!result.success) throw badRequest(result.error.issues[0]?.message ?? 'The request is invalid.');
};
