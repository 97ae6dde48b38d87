import type { AgeModel } from '../model/age-model';
import type { Loader } from './registry';

/**
 * A loader that hands every registry asking for the same name/version one shared session: the
 * default and a tier usually name the same version (`model=accurate` and no `model=`), and two
 * sessions of one graph would take its wasm memory twice (the heap never shrinks). The session
 * is released when the last registry holding it lets go.
 */
export function sharedAgeLoader(loader: Loader<AgeModel>): Loader<AgeModel> {
  const live = new Map<string, { model: Promise<AgeModel>; refs: number }>();
  return async (manifest, files) => {
    const key = `${manifest.name}/${manifest.version}`;
    let entry = live.get(key);
    if (!entry) {
      entry = { model: loader(manifest, files), refs: 0 };
      live.set(key, entry);
      entry.model.catch(() => live.delete(key));
    }
    const shared = entry;
    shared.refs++;
    let model: AgeModel;
    try {
      model = await shared.model;
    } catch (err) {
      shared.refs--;
      throw err;
    }
    let released = false;
    return {
      manifest: model.manifest,
      run: (crop) => model.run(crop),
      release: async () => {
        if (released) return;
        released = true;
        if (--shared.refs === 0) {
          live.delete(key);
          await model.release();
        }
      },
    };
  };
}
