// Bindings and types that exist only under test (see vitest.config.mjs).
declare namespace Cloudflare {
  interface Env {
    FIXTURES: Fetcher;
    RATE_LIMITER_TEST: RateLimit;
  }
  interface GlobalProps {
    // Types `exports.default` from "cloudflare:workers" as the worker under test.
    mainModule: typeof import('../src/index');
  }
}
