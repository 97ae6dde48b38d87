import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import { captureLogs } from '../../../test/helpers/logs';
import { tooLarge } from '../../errors';
import { ModelUnavailableError } from '../../registry/registry';
import { methodNotAllowed, notFound, onError } from '.';

function app(thrown: unknown) {
  const a = new Hono();
  a.get('/boom', () => {
    throw thrown;
  });
  a.all('/only-get', methodNotAllowed('GET'));
  a.onError(onError);
  a.notFound(notFound);
  return a;
}

async function shape(res: Response) {
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(Object.keys(body)).toEqual(['error']);
  return { status: res.status, code: body.error.code, message: body.error.message };
}

describe('error handling', () => {
  const logs = captureLogs();

  it('maps API errors, missing models and plain HTTP exceptions to the one JSON shape', async () => {
    expect(await shape(await app(tooLarge('too big')).request('/boom'))).toEqual({ status: 413, code: 'payload_too_large', message: 'too big' });
    expect(await shape(await app(new ModelUnavailableError('none')).request('/boom'))).toEqual({ status: 503, code: 'model_unavailable', message: 'none' });
    expect((await shape(await app(new HTTPException(400, { message: 'bad' })).request('/boom'))).code).toBe('bad_request');
  });

  it('hides the details of unexpected errors behind a 500', async () => {
    expect(await shape(await app(new Error('secret internals')).request('/boom'))).toEqual({ status: 500, code: 'internal', message: 'Internal error.' });
    // The details go to the log line (found by the request id), not to the client.
    expect(logs.of('unhandled_error')).toEqual([expect.objectContaining({ path: '/boom', name: 'Error', message: 'secret internals' })]);
  });

  it('answers 404 and 405 in the same shape', async () => {
    expect((await shape(await app(null).request('/nope'))).code).toBe('not_found');
    const res = await app(null).request('/only-get', { method: 'PUT' });
    expect(res.headers.get('allow')).toBe('GET');
    expect((await shape(res)).status).toBe(405);
  });
});
