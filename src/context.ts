import type { Config } from './config';

/** What every request carries: the vars parsed once (`config`) and its id (hono/request-id). */
export type AppVariables = { config: Config; requestId: string };

export type AppEnv = { Bindings: Env; Variables: AppVariables };
