// Bindings and types that exist only under test (see vitest.config.mjs).
declare namespace Cloudflare {
  interface Env {
    FIXTURES: Fetcher;
    RATE_LIMITER_TEST: RateLimit;
    /** How many cases test/fuzz.test.ts sends (vitest.config.mjs: FUZZ_N from the environment). */
    FUZZ_N?: string;
  }
  interface GlobalProps {
    // Types `exports.default` from "cloudflare:workers" as the worker under test.
    mainModule: typeof import('../src/index');
  }
}
