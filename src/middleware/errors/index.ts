import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ApiError, clip, type ErrorCode } from '../../errors';
import { ModelUnavailableError } from '../../registry/registry';

/** The one error shape of the API. */
export type ErrorBody = { error: { code: ErrorCode; message: string } };

const CODES: Partial<Record<number, ErrorCode>> = {
  400: 'bad_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'undecodable_image',
  429: 'rate_limited',
  503: 'model_unavailable',
};

export function errorResponse(c: Context, status: ContentfulStatusCode, code: ErrorCode, message: string): Response {
  c.header('Cache-Control', 'no-store');
  return c.json({ error: { code, message } } satisfies ErrorBody, status);
}

export const onError: ErrorHandler = (err, c) => {
  if (err instanceof ApiError) return errorResponse(c, err.status, err.code, err.message);
  if (err instanceof ModelUnavailableError) return errorResponse(c, 503, 'model_unavailable', err.message);
  if (err instanceof HTTPException) {
    return errorResponse(c, err.status, CODES[err.status] ?? (err.status < 500 ? 'bad_request' : 'internal'), err.message || 'Request failed.');
  }
  // Only the error itself is logged: never request bodies (they are photos of people).
  console.error(JSON.stringify({ event: 'unhandled_error', path: c.req.path, name: (err as Error).name, message: (err as Error).message }));
  return errorResponse(c, 500, 'internal', 'Internal error.');
};

export const notFound: NotFoundHandler = (c) => errorResponse(c, 404, 'not_found', `No route for ${clip(c.req.method, 20)} ${clip(c.req.path)}.`);

/** Answers 405 with an Allow header for a known path called with the wrong method. */
export const methodNotAllowed = (allow: string) => (c: Context) => {
  c.header('Allow', allow);
  return errorResponse(c, 405, 'method_not_allowed', `${clip(c.req.method, 20)} is not allowed here; use ${allow}.`);
};
