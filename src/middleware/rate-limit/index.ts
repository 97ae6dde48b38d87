import { createMiddleware } from 'hono/factory';
import { ApiError } from '../../errors';
import { sha256Hex } from '../../registry/sha256';

/**
 * What the limiter needs: the name of the rate-limiting binding in force, the Retry-After to
 * send, and (optional secret) the SHA-256 of each API key that gets a budget of its own.
 */
export type RateLimitEnv = {
  RATE_LIMIT_BINDING?: string;
  RATE_LIMIT_RETRY_AFTER?: string;
  API_KEY_SHA256?: string;
  [binding: string]: unknown;
};

export const API_KEY_HEADER = 'x-api-key';

const isLimiter = (v: unknown): v is RateLimit => typeof (v as RateLimit | undefined)?.limit === 'function';

/**
 * The key a request is counted under: its API key when that key is one of API_KEY_SHA256 (a
 * partner behind a shared NAT gets its own budget), otherwise the client IP. An unknown key
 * counts as the IP, or a client could buy a fresh budget by sending a new made-up key each
 * time. Only the key's hash ever reaches the limiter.
 */
export async function clientKey(headers: Headers, env: RateLimitEnv): Promise<string> {
  const apiKey = headers.get(API_KEY_HEADER);
  if (apiKey && env.API_KEY_SHA256) {
    const digest = await sha256Hex(new TextEncoder().encode(apiKey));
    const known = env.API_KEY_SHA256.split(',').map((s) => s.trim().toLowerCase());
    if (known.includes(digest)) return `key:${digest}`;
  }
  // Cloudflare sets CF-Connecting-IP on every request at the edge; without it (wrangler dev,
  // tests) every caller is one local client.
  return `ip:${headers.get('cf-connecting-ip') ?? 'local'}`;
}

/** 429 in the one error shape once the client's budget in the binding's window is spent. */
export const rateLimit = createMiddleware<{ Bindings: RateLimitEnv }>(async (c, next) => {
  const name = c.env.RATE_LIMIT_BINDING || 'RATE_LIMITER';
  const limiter = c.env[name];
  // A misconfigured limit must be loud, not a silently unlimited public API.
  if (!isLimiter(limiter)) throw new Error(`RATE_LIMIT_BINDING names ${name}, which is not a [[ratelimits]] binding`);
  const { success } = await limiter.limit({ key: await clientKey(c.req.raw.headers, c.env) });
  if (!success) {
    const retry = Number(c.env.RATE_LIMIT_RETRY_AFTER);
    c.header('Retry-After', String(Number.isInteger(retry) && retry > 0 ? retry : 60));
    throw new ApiError(429, 'rate_limited', 'Too many requests from this client; retry after the number of seconds in Retry-After.');
  }
  await next();
});
