// Bindings that exist only under test (see vitest.config.mjs).
declare namespace Cloudflare {
  interface Env {
    FIXTURES: Fetcher;
  }
}
