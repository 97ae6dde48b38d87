// A real photograph for the demo page's screenshot: scikit-image's `astronaut.png` (Eileen
// Collins, from NASA's Great Images database; "no known copyright restrictions, released into
// the public domain", as skimage/data/_fetchers.py says). It ships inside scikit-image's wheel
// on PyPI, so it is fetched with pip, not kept in git: `pip download scikit-image --no-deps`
// into .cache/wheels/, the PNG taken out into .cache/photos/ and checked against the sha256 that
// scikit-image's own registry (skimage/data/_registry.py) gives it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, WHEELS, python, sha256File } from '../../scripts/lib.mjs';

export const ASTRONAUT_SHA256 = '88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5';
const PHOTO = join(ROOT, '.cache', 'photos', 'astronaut.png');

/**
 * The path of astronaut.png, fetched once; or `{ skip }` saying why it could not be had (no
 * network to PyPI, no pip), for the caller to skip loudly.
 */
export function astronautPhoto() {
  if (existsSync(PHOTO) && sha256File(PHOTO) === ASTRONAUT_SHA256) return { path: PHOTO };
  mkdirSync(WHEELS, { recursive: true });
  let wheel = readdirSync(WHEELS).find((f) => f.startsWith('scikit_image-') && f.endsWith('.whl'));
  if (!wheel) {
    const r = spawnSync(python(), ['-m', 'pip', 'download', 'scikit-image', '--no-deps', '--only-binary=:all:', '-d', WHEELS, '-q'], { encoding: 'utf8', timeout: 180_000 });
    wheel = readdirSync(WHEELS).find((f) => f.startsWith('scikit_image-') && f.endsWith('.whl'));
    if (r.status !== 0 || !wheel) return { skip: `pip download scikit-image failed (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})` };
  }
  mkdirSync(join(ROOT, '.cache', 'photos'), { recursive: true });
  // The wheel is a zip; Python's zipfile takes the one member out.
  const unzip = spawnSync(python(), ['-c', `import sys, zipfile\nopen(sys.argv[2], 'wb').write(zipfile.ZipFile(sys.argv[1]).read('skimage/data/astronaut.png'))`, join(WHEELS, wheel), PHOTO], { encoding: 'utf8' });
  if (unzip.status !== 0) return { skip: `could not take astronaut.png out of ${wheel}: ${unzip.stderr.trim().split('\n').pop()}` };
  const sha = sha256File(PHOTO);
  if (sha !== ASTRONAUT_SHA256) return { skip: `astronaut.png in ${wheel} has sha256 ${sha}, not scikit-image's ${ASTRONAUT_SHA256}` };
  return { path: PHOTO };
}
