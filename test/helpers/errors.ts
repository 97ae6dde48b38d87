import { asApiError } from '../../src/middleware/errors';

/** The status and message the API answers for what `fn` throws (an ApiError, or the image or
 *  model layer's refusal it maps); undefined when it returns. Any other error is rethrown. */
export function refusal(fn: () => unknown): { status: number; message: string } | undefined {
  try {
    fn();
  } catch (err) {
    const refusal = asApiError(err);
    if (refusal) return { status: refusal.status, message: refusal.message };
    throw err;
  }
  return undefined;
}
