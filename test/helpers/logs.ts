import { afterEach, beforeEach, expect } from 'vitest';

// Tests that provoke failures on purpose (a broken model, a missing detector) make the worker
// log them, as it should in production. Those lines are captured here instead of printed, so a
// green run shows only test names and totals; the tests assert on them, and a test that fails
// prints what it logged.

const LEVELS = ['log', 'info', 'warn', 'error', 'debug'] as const;

/** A console argument as workerd prints it: byte arrays as their numbers, objects as JSON. */
export function logText(args: unknown[]): string {
  return args
    .map((a) => (typeof a === 'string' ? a : ArrayBuffer.isView(a) ? `[${Array.from(a as Uint8Array).join(', ')}]` : JSON.stringify(a)))
    .join(' ');
}

export type CapturedLogs = {
  /** Every line logged during the current test. */
  readonly lines: string[];
  /** The `event` of each JSON line logged during the current test, in order. */
  events(): string[];
  /** The JSON lines of one event. */
  of(event: string): Record<string, unknown>[];
};

/** Captures the console for every test of the enclosing file or `describe`. */
export function captureLogs(): CapturedLogs {
  const lines: string[] = [];
  const real = { ...console };
  const parsed = () =>
    lines.flatMap((l) => {
      try {
        const v = JSON.parse(l);
        return v && typeof v === 'object' ? [v as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  beforeEach(({ onTestFailed }) => {
    lines.length = 0;
    for (const level of LEVELS) console[level] = (...args: unknown[]) => void lines.push(logText(args));
    onTestFailed(() => {
      for (const line of lines) real.error(line);
    });
  });
  afterEach(() => {
    for (const level of LEVELS) console[level] = real[level];
  });
  return {
    lines,
    events: () => parsed().map((v) => String(v.event)),
    of: (event) => parsed().filter((v) => v.event === event),
  };
}

/**
 * The only lines a worker whose active.json names no tiers (the tests' fixture) should log: GET
 * /v1/models asks for each tier and reports the one it cannot find.
 */
export function expectOnlyUnnamedTiers(logs: CapturedLogs) {
  const failed = logs.of('model_load_failed');
  expect(logs.lines).toHaveLength(failed.length);
  for (const e of failed) expect(e.message).toMatch(/^active\.json names no "(fast|accurate)" tier$/);
}
