import { readdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, extname, basename } from 'node:path';
import { DataError } from '../errors';
import { DatasetSource, SourceItem, toKey } from './source';
import { listImages } from './imagenet';

async function subdirs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of (await readdir(dir)).sort()) if ((await stat(join(dir, d))).isDirectory()) out.push(d);
  return out;
}

/** Any `class/*.jpg` tree; with train/ (and val/ or test/) folders at the top, those are the splits. */
export async function folderSource(root: string): Promise<DatasetSource> {
  const top = await subdirs(root);
  const splitDirs = ['train', 'val', 'test'].filter((s) => top.includes(s));
  const splits: Record<string, string> = splitDirs.length ? Object.fromEntries(splitDirs.map((s) => [s === 'test' && !splitDirs.includes('val') ? 'val' : s, join(root, s)])) : { train: root };
  const names = new Set<string>();
  for (const dir of Object.values(splits)) for (const c of await subdirs(dir)) names.add(c);
  const classes = [...names].sort().map((name, id) => ({ id, name }));
  if (classes.length === 0) throw new DataError('INGEST', `${root} has no class folders: expected ${root}/<class>/*.jpg (optionally under train/ and val/)`);
  const byName = new Map(classes.map((c) => [c.name, c.id]));
  const out: Record<string, SourceItem[]> = {};
  for (const [split, dir] of Object.entries(splits)) {
    if (!existsSync(dir)) continue;
    const items: SourceItem[] = [];
    for (const c of await subdirs(dir)) {
      for (const f of await listImages(join(dir, c))) items.push({ kind: 'file', key: toKey(`${c}__${basename(f, extname(f))}`), label: byName.get(c)!, path: join(dir, c, f) });
    }
    out[split] = items;
  }
  return { name: basename(root), classes, splits: out };
}
