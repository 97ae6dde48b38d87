import { bodyLimit } from 'hono/body-limit';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../../context';
import { ApiError, badRequest, tooLarge } from '../../errors';

/**
 * hono/body-limit at MAX_BODY_BYTES, answering 413 in the one error shape: a declared
 * Content-Length over the limit is refused before anything is read, and a body without one
 * (chunked) is read only up to the limit.
 */
export const limitBody = createMiddleware<AppEnv>(async (c, next) => {
  const max = c.var.config.maxBodyBytes;
  const declared = c.req.header('content-length');
  // bodyLimit reads a garbled Content-Length as within the limit; it is a client error.
  if (declared !== undefined && !/^\d+$/.test(declared.trim())) throw badRequest('Invalid Content-Length.');
  const limit = bodyLimit({
    maxSize: max,
    onError: () => {
      throw tooLarge(declared === undefined ? `The request body exceeds ${max} bytes.` : `The request body is ${declared.trim()} bytes; at most ${max} are accepted.`);
    },
  });
  try {
    return await limit(c, next);
  } catch (err) {
    if (err instanceof ApiError) throw err;
    // bodyLimit's own read failed (errors after next() end up in onError, not here): the
    // client went away mid-upload.
    throw badRequest('The request body could not be read to its end (connection closed early, or shorter than its Content-Length).');
  }
});
