import { createMiddleware } from 'hono/factory';
import { readConfig } from '../../config';
import type { AppEnv } from '../../context';

/** Parses the vars once per request; everything after reads `c.var.config`. */
export const withConfig = createMiddleware<AppEnv>(async (c, next) => {
  c.set('config', readConfig(c.env));
  await next();
});
