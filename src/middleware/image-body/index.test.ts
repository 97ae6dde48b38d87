import { Hono } from 'hono';
import { requestId } from 'hono/request-id';
import type { AppEnv } from '../../context';
import { limitBody } from '../body-limit';
import { withConfig } from '../config';
import { describe, expect, it } from 'vitest';
import { notFound, onError } from '../errors';
import { imageBody, type ImageBodyVariables } from '.';

const env = { MAX_BODY_BYTES: '100' } as Env;

function app() {
  const a = new Hono<AppEnv & { Variables: ImageBodyVariables }>();
  // As the age route has it: the request id and the vars, then the body cap, then the body.
  a.post('/', requestId(), withConfig, limitBody, imageBody, (c) => {
    const u = c.get('upload');
    return c.json({ bytes: Array.from(u.bytes), box: u.box ?? null, crop: u.crop ?? null });
  });
  a.onError(onError);
  a.notFound(notFound);
  return a;
}

const req = (body: BodyInit, headers: Record<string, string> = {}, query = '') =>
  app().request(`/${query}`, { method: 'POST', body, headers }, env);

describe('imageBody', () => {
  it('takes a raw JPEG body, whose box and crop are the query\'s (the route reads those: test/api.test.ts)', async () => {
    const res = await req(new Uint8Array([1, 2, 3]), { 'content-type': 'image/jpeg' }, '?box=1,2,3,4');
    expect(await res.json()).toEqual({ bytes: [1, 2, 3], box: null, crop: null });
  });

  it('takes the multipart field "image" and the box field', async () => {
    const form = new FormData();
    form.append('image', new File([new Uint8Array([9, 8])], 'a.jpg', { type: 'image/jpeg' }));
    form.append('box', '5,6,7,8');
    form.append('crop', 'image');
    const res = await app().request('/', { method: 'POST', body: form }, { MAX_BODY_BYTES: '100000' } as Env);
    expect(await res.json()).toEqual({ bytes: [9, 8], box: { x: 5, y: 6, w: 7, h: 8 }, crop: 'image' });
  });

  it('refuses by Content-Length before reading the body', async () => {
    let pulled = false;
    // highWaterMark 0: the stream is pulled only when someone reads it.
    const body = new ReadableStream(
      {
        pull(controller) {
          pulled = true;
          controller.enqueue(new Uint8Array(10));
          controller.close();
        },
      },
      { highWaterMark: 0 },
    );
    const res = await app().request('/', { method: 'POST', body, headers: { 'content-type': 'image/jpeg', 'content-length': '101' }, duplex: 'half' } as RequestInit, env);
    expect(res.status).toBe(413);
    expect(pulled).toBe(false);
  });

  it('stops reading a body that grows past the limit without Content-Length', async () => {
    let chunks = 0;
    const body = new ReadableStream({
      pull(controller) {
        chunks++;
        controller.enqueue(new Uint8Array(60));
        if (chunks === 50) controller.close();
      },
    });
    const res = await app().request('/', { method: 'POST', body, headers: { 'content-type': 'image/jpeg' }, duplex: 'half' } as RequestInit, env);
    expect(res.status).toBe(413);
    expect(chunks).toBeLessThan(5);
  });

  it('answers 400, not 500, when the body breaks off mid-upload', async () => {
    let sent = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (sent++ === 0) controller.enqueue(new Uint8Array(20));
        else controller.error(new Error('connection reset'));
      },
    });
    const res = await app().request('/', { method: 'POST', body, headers: { 'content-type': 'image/jpeg' }, duplex: 'half' } as RequestInit, env);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'bad_request', message: expect.stringMatching(/could not be read to its end/) });
  });

  it('answers 415 for other types, 400 for an invalid Content-Length or an empty body', async () => {
    expect((await req('x', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await req('x', { 'content-type': 'image/jpeg', 'content-length': 'abc' })).status).toBe(400);
    expect((await req(new Uint8Array(0), { 'content-type': 'image/jpeg' })).status).toBe(400);
  });
});
