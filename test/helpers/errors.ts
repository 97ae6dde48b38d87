import { ApiError } from '../../src/errors';

/** The status and message of the ApiError `fn` throws; undefined when it returns. Any other error is rethrown. */
export function refusal(fn: () => unknown): { status: number; message: string } | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, message: err.message };
    throw err;
  }
  return undefined;
}
