// UTKFace's test split as the benchmarks read it (labels.csv + images/ under ../shared/data/utkface).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../scripts/lib.mjs';

/**
 * UTKFace's test split from `dir` (labels.csv + images/), or `limit` rows evenly spaced through
 * it (labels.csv is sorted by file name, i.e. by age digits): [{file, age}] and the split's size.
 */
export function utkfaceTestRows(dir, limit) {
  const csv = join(dir, 'labels.csv');
  if (!existsSync(csv) || !existsSync(join(dir, 'images'))) {
    throw new UsageError(`UTKFace is not at ${dir} (expected labels.csv and images/): pass --data DIR`);
  }
  const [header, ...lines] = readFileSync(csv, 'utf8').trim().split('\n');
  const col = Object.fromEntries(header.split(',').map((name, i) => [name.trim(), i]));
  if (col.file === undefined || col.age === undefined || col.split === undefined) throw new UsageError(`${csv} needs file, age and split columns`);
  const rows = lines.map((l) => l.split(',')).filter((r) => r[col.split].trim() === 'test');
  if (rows.length === 0) throw new UsageError(`${csv} has no test rows`);
  const picked = limit && limit < rows.length ? Array.from({ length: limit }, (_, i) => rows[Math.floor((i * rows.length) / limit)]) : rows;
  // UTKFace's codes (its README); a missing column, an empty or an unknown code stays undefined.
  const label = (r, name, names) => {
    const code = r[col[name]]?.trim();
    return code ? names[Number(code)] : undefined;
  };
  return {
    rows: picked.map((r) => ({
      file: r[col.file],
      age: Number(r[col.age]),
      gender: label(r, 'gender', ['male', 'female']),
      race: label(r, 'race', ['White', 'Black', 'Asian', 'Indian', 'Others']),
    })),
    total: rows.length,
  };
}
