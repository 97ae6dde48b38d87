import type { AgeModel } from '../model/age-model';
import { ManifestError, parseActive, parseManifest, type ActivePointer, type ManifestFile } from './manifest';
import { sha256Hex } from './sha256';

/**
 * The model registry of one isolate.
 *
 * R2 layout (docs/model-contract.md): `<prefix>active.json` names the active version;
 * `<prefix><name>/<version>/` holds its manifest and files. `<prefix>history.json`, written
 * by scripts/models.mjs, lists previously active versions, newest last.
 *
 * - active.json is re-read at most every `refreshMs`, so a publish takes effect without a
 *   redeploy;
 * - every file is checked against the manifest's size and sha256 before onnxruntime sees it;
 * - a version that fails to load never replaces a working one: the isolate keeps serving its
 *   last good model (or, when it has none yet, the newest loadable version in history.json)
 *   and reports the failure in `status()`.
 */

/** The part of an R2 bucket the registry reads (an `R2Bucket` fits; tests pass a small fake). */
export type ModelStore = {
  get(key: string): Promise<{ etag: string; text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer> } | null>;
};

/** What the registry needs of a manifest: which files to fetch and verify, and which one is the graph. */
export type VersionManifest = { name: string; version: string; model: string; files: ManifestFile[] };

/** A loaded model of any kind (the age model, the face detector). */
export type Served = { readonly manifest: VersionManifest; release(): Promise<void> };

export type Loader<M extends Served> = (manifest: M['manifest'], files: Map<string, Uint8Array>) => Promise<M>;

export type RegistryOptions<M extends Served> = {
  prefix: string;
  refreshMs: number;
  loader: Loader<M>;
  /** What it serves, for error messages ("model" by default, e.g. "face detector"). */
  what?: string;
  /**
   * Which of active.json's tiers it follows (`tiers[tier]`; history.json entries with that
   * `tier`); none: active.json's top-level name and version (entries without a tier).
   */
  tier?: string;
  /** Reads and validates manifest.json; the age model's parser by default. */
  parse?: (text: string, expected: ActivePointer) => M['manifest'];
  /** How long a version that failed is left alone while active.json is unchanged. */
  failedRetryMs?: number;
  now?: () => number;
};

export type RegistryStatus<Man = VersionManifest> = {
  active: { name: string; version: string; loaded_at: string; manifest: Man } | null;
  requested: ActivePointer | null;
  fallback: boolean;
  /** The last failure to load what active.json names (cleared once it loads). */
  load_error: { name?: string; version?: string; message: string; at: string } | null;
  checked_at: string | null;
};

export class ModelUnavailableError extends Error {
  override name = 'ModelUnavailableError';
}

export type Lease<M extends Served = AgeModel> = { model: M; fallback: boolean; release(): void };

type Loaded<M> = { pointer: ActivePointer; model: M; loadedAt: number; users: number; idle?: () => void };
type Failure = { pointer?: ActivePointer; message: string; at: number; etag?: string };

const same = (a: ActivePointer | undefined, b: ActivePointer | undefined) => !!a && !!b && a.name === b.name && a.version === b.version;
const label = (p: ActivePointer) => `${p.name}/${p.version}`;
const HISTORY_TRIES = 3;
const NO_MODEL_RETRY_MS = 5_000;

export class ModelRegistry<M extends Served = AgeModel> {
  private loaded: Loaded<M> | undefined;
  private requested: ActivePointer | undefined;
  private failure: Failure | undefined;
  private lastCheck = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<void> | undefined;
  /** The request that started the current refresh: its log lines carry the id. */
  private refreshRequestId: string | undefined;
  private readonly now: () => number;
  private readonly failedRetryMs: number;

  constructor(
    private bucket: ModelStore,
    private readonly options: RegistryOptions<M>,
  ) {
    this.now = options.now ?? Date.now;
    this.failedRetryMs = options.failedRetryMs ?? 5 * 60_000;
  }

  /**
   * The model to serve with, loading or switching first when due. Call `release()` when done.
   * `requestId` goes into the log lines of a load this request starts.
   */
  async acquire(requestId?: string): Promise<Lease<M>> {
    // While a new version downloads, requests keep using the current model; they only wait
    // when there is none (first load, or the moment of the swap).
    if (this.refreshing) {
      if (!this.loaded) await this.refreshing;
    } else if (this.isDue()) {
      await this.refresh(requestId);
    }
    const loaded = this.loaded;
    if (!loaded) {
      const what = (this.options.tier ? `${this.options.tier} ` : '') + (this.options.what ?? 'model');
      throw new ModelUnavailableError(this.failure ? `No ${what} could be loaded: ${this.failure.message}` : `No ${what} is loaded.`);
    }
    loaded.users++;
    let released = false;
    return {
      model: loaded.model,
      fallback: !same(loaded.pointer, this.requested),
      release: () => {
        if (released) return;
        released = true;
        loaded.users--;
        if (loaded.users === 0) loaded.idle?.();
      },
    };
  }

  /**
   * With a model, active.json is re-read every `refreshMs`. Without one, every request would
   * otherwise go back to R2 (and possibly download a broken version again): after a failure,
   * wait a little, but no longer than `refreshMs`.
   */
  private isDue(): boolean {
    const since = this.now() - this.lastCheck;
    if (this.loaded) return since >= this.options.refreshMs;
    return !this.failure || since >= Math.min(this.options.refreshMs, NO_MODEL_RETRY_MS);
  }

  /** Reads through `store` from now on (the same bucket, as handed to the current request). */
  useStore(store: ModelStore): void {
    this.bucket = store;
  }

  /** Whether a model is in memory, without touching R2. */
  get isLoaded(): boolean {
    return this.loaded !== undefined;
  }

  status(): RegistryStatus<M['manifest']> {
    const iso = (t: number) => new Date(t).toISOString();
    const l = this.loaded;
    const f = this.failure;
    return {
      active: l ? { ...l.pointer, loaded_at: iso(l.loadedAt), manifest: l.model.manifest } : null,
      requested: this.requested ?? null,
      fallback: !!l && !!this.requested && !same(l.pointer, this.requested),
      load_error: f ? { ...(f.pointer ?? {}), message: f.message, at: iso(f.at) } : null,
      checked_at: Number.isFinite(this.lastCheck) ? iso(this.lastCheck) : null,
    };
  }

  /** Re-reads active.json now and switches if it names another version (single flight). */
  refresh(requestId?: string): Promise<void> {
    if (!this.refreshing) {
      this.refreshRequestId = requestId;
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = undefined;
      });
    }
    return this.refreshing;
  }

  /** One JSON log line, with the id of the request whose refresh this is. */
  private log(event: string, fields: Record<string, unknown>): void {
    console.error(JSON.stringify({ event, request_id: this.refreshRequestId ?? null, ...fields }));
  }

  private key(...parts: string[]): string {
    return this.options.prefix + parts.join('/');
  }

  private async doRefresh(): Promise<void> {
    this.lastCheck = this.now();
    let pointer: ActivePointer;
    let etag: string | undefined;
    try {
      const obj = await this.bucket.get(this.key('active.json'));
      if (!obj) throw new ManifestError(`${this.key('active.json')} not found in the bucket`);
      etag = obj.etag;
      pointer = parseActive(await obj.text(), this.options.tier);
    } catch (err) {
      this.fail(undefined, err);
      return this.fallBackToHistory(undefined);
    }
    this.requested = pointer;
    if (same(this.loaded?.pointer, pointer)) {
      this.failure = undefined;
      return;
    }
    const f = this.failure;
    if (f && same(f.pointer, pointer) && f.etag === etag && this.now() - f.at < this.failedRetryMs) {
      return this.loaded ? undefined : this.fallBackToHistory(pointer);
    }
    try {
      await this.switchTo(pointer);
      this.failure = undefined;
    } catch (err) {
      this.fail(pointer, err, etag);
      await this.fallBackToHistory(pointer);
    }
  }

  private fail(pointer: ActivePointer | undefined, err: unknown, etag?: string): void {
    const message = err instanceof Error ? err.message : String(err);
    this.failure = { ...(pointer ? { pointer } : {}), message, at: this.now(), ...(etag ? { etag } : {}) };
    this.log('model_load_failed', { model: pointer ? label(pointer) : null, message });
  }

  /** A fresh isolate whose active version is broken has no last good model: use history.json. */
  private async fallBackToHistory(broken: ActivePointer | undefined): Promise<void> {
    if (this.loaded) return;
    let entries: ActivePointer[] = [];
    try {
      const obj = await this.bucket.get(this.key('history.json'));
      if (!obj) return;
      const raw = JSON.parse(await obj.text()) as { entries?: unknown };
      const tier = this.options.tier;
      entries = (Array.isArray(raw.entries) ? raw.entries : []).flatMap((e) => {
        // Each tier falls back only to its own earlier versions.
        if (((e as { tier?: unknown } | null)?.tier ?? undefined) !== tier) return [];
        try {
          return [parseActive(JSON.stringify(e))];
        } catch {
          return [];
        }
      });
    } catch {
      return;
    }
    const candidates = entries.reverse().filter((p, i, all) => !same(p, broken) && all.findIndex((q) => same(q, p)) === i);
    for (const candidate of candidates.slice(0, HISTORY_TRIES)) {
      try {
        await this.switchTo(candidate);
        return;
      } catch (err) {
        this.log('model_fallback_failed', { model: label(candidate), message: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  /** Fetches and verifies every file of a version; nothing is handed to onnxruntime unverified. */
  private async fetchVerified(pointer: ActivePointer): Promise<{ manifest: M['manifest']; files: Map<string, Uint8Array> }> {
    const mobj = await this.bucket.get(this.key(pointer.name, pointer.version, 'manifest.json'));
    if (!mobj) throw new ManifestError(`${label(pointer)}: manifest.json not found`);
    const parse = this.options.parse ?? (parseManifest as unknown as (text: string, expected: ActivePointer) => M['manifest']);
    const manifest = parse(await mobj.text(), pointer);
    const files = new Map<string, Uint8Array>();
    for (const f of manifest.files) {
      if (f.role !== 'model' && f.role !== 'external_data') continue;
      const obj = await this.bucket.get(this.key(pointer.name, pointer.version, f.path));
      if (!obj) throw new ManifestError(`${label(pointer)}: file ${f.path} not found`);
      const bytes = new Uint8Array(await obj.arrayBuffer());
      if (bytes.byteLength !== f.bytes) throw new ManifestError(`${label(pointer)}: ${f.path} has ${bytes.byteLength} bytes, the manifest says ${f.bytes}`);
      const digest = await sha256Hex(bytes);
      if (digest !== f.sha256) throw new ManifestError(`${label(pointer)}: ${f.path} sha256 mismatch (got ${digest}, manifest says ${f.sha256})`);
      files.set(f.path, bytes);
    }
    return { manifest, files };
  }

  /**
   * Loads `pointer` in place of the current model. The old session is released before the new
   * one is created: the wasm heap never shrinks, and two sessions side by side could push the
   * isolate past its 128 MB. If the new session fails, the old version is loaded again.
   */
  private async switchTo(pointer: ActivePointer): Promise<void> {
    const { manifest, files } = await this.fetchVerified(pointer);
    const old = this.loaded;
    if (old) await this.retire(old);
    try {
      this.loaded = { pointer, model: await this.options.loader(manifest, files), loadedAt: this.now(), users: 0 };
    } catch (err) {
      if (old) await this.restore(old.pointer);
      throw err;
    } finally {
      files.clear(); // drop the JS copies of the model bytes; ORT holds its own
    }
  }

  private async retire(old: Loaded<M>): Promise<void> {
    this.loaded = undefined;
    if (old.users > 0) await new Promise<void>((resolve) => (old.idle = resolve));
    await old.model.release().catch(() => undefined);
  }

  private async restore(pointer: ActivePointer): Promise<void> {
    try {
      const { manifest, files } = await this.fetchVerified(pointer);
      this.loaded = { pointer, model: await this.options.loader(manifest, files), loadedAt: this.now(), users: 0 };
    } catch (err) {
      this.log('model_restore_failed', { model: label(pointer), message: err instanceof Error ? err.message : String(err) });
    }
  }
}
