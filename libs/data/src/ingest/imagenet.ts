import { readdir, readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, extname, basename } from 'node:path';
import { DataError } from '../errors';
import { ClassInfo } from '../manifest';
import { DatasetSource, SourceItem, toKey } from './source';

const IMAGE_EXT = /\.(jpe?g|png|webp|bmp|tiff?)$/i;
const SYNSET_FILES = ['LOC_synset_mapping.txt', 'synset_words.txt', 'synsets.txt'];
const WNID = /^n\d{8}$/;

export interface ImageNetOptions {
  /** Synset list, lines "n01440764 tench, Tinca tinca". Default: the first of LOC_synset_mapping.txt, synset_words.txt, synsets.txt found in the root. */
  synsets?: string;
  /**
   * Validation labels. Default: the first found in the root of LOC_val_solution.csv (Kaggle: "ImageId,n01751748 ..."),
   * val.txt ("<file> <sorted class index>" or "<file> <wnid>"), ILSVRC2012_validation_ground_truth.txt
   * (one ILSVRC2012_ID per line, 1-based; needs `devkitSynsets`). Not needed when val/ has one folder per wnid.
   */
  valLabels?: string;
  /** For ILSVRC2012_validation_ground_truth.txt: wnids in ILSVRC2012_ID order (the devkit's meta.mat), one per line. */
  devkitSynsets?: string;
}

export async function listImages(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => IMAGE_EXT.test(f)).sort();
}

export async function readSynsets(path: string): Promise<{ wnid: string; name: string }[]> {
  const out: { wnid: string; name: string }[] = [];
  for (const line of (await readFile(path, 'utf8')).split(/\r?\n/)) {
    const m = /^\s*(n\d{8})\s*(.*)$/.exec(line);
    if (m) out.push({ wnid: m[1], name: m[2].trim() || m[1] });
  }
  if (out.length === 0) throw new DataError('INGEST', `${path} has no "nXXXXXXXX name" lines`);
  return out;
}

/** ILSVRC-2012 layout: train/nXXXXXXXX/*.JPEG; val/*.JPEG with a label file, or val/nXXXXXXXX/*.JPEG. */
export async function imagenetSource(root: string, o: ImageNetOptions = {}): Promise<DatasetSource> {
  const trainDir = join(root, 'train');
  const valDir = join(root, 'val');
  if (!existsSync(trainDir) && !existsSync(valDir)) throw new DataError('INGEST', `${root} has neither train/ nor val/: point at the ILSVRC-2012 root (train/nXXXXXXXX/*.JPEG, val/)`);
  const synsetFile = o.synsets ?? SYNSET_FILES.map((f) => join(root, f)).find((f) => existsSync(f));
  let synsets: { wnid: string; name: string }[];
  if (synsetFile) synsets = await readSynsets(synsetFile);
  else synsets = (await readdir(trainDir)).filter((d) => WNID.test(d)).map((wnid) => ({ wnid, name: wnid }));
  // Class ids in sorted wnid order, as torchvision's ImageFolder and LOC_synset_mapping.txt.
  synsets.sort((a, b) => (a.wnid < b.wnid ? -1 : 1));
  const classes: ClassInfo[] = synsets.map((s, id) => ({ id, wnid: s.wnid, name: s.name }));
  const byWnid = new Map(classes.map((c) => [c.wnid!, c.id]));

  const splits: Record<string, SourceItem[]> = {};
  if (existsSync(trainDir)) {
    const items: SourceItem[] = [];
    for (const wnid of (await readdir(trainDir)).sort()) {
      if (!(await stat(join(trainDir, wnid))).isDirectory()) continue;
      const label = byWnid.get(wnid);
      if (label === undefined) throw new DataError('INGEST', `train/${wnid} is not in the synset list ${synsetFile ?? ''}: use the full list or remove the folder`);
      for (const f of await listImages(join(trainDir, wnid))) items.push({ kind: 'file', key: toKey(basename(f, extname(f))), label, path: join(trainDir, wnid, f) });
    }
    splits.train = items;
  }
  if (existsSync(valDir)) splits.val = await valItems(root, valDir, byWnid, classes, o);
  return { name: 'imagenet', classes, splits };
}

async function valItems(root: string, valDir: string, byWnid: Map<string, number>, classes: ClassInfo[], o: ImageNetOptions): Promise<SourceItem[]> {
  const entries = (await readdir(valDir)).sort();
  const items: SourceItem[] = [];
  const dirs = entries.filter((d) => WNID.test(d));
  if (dirs.length > 0) {
    for (const wnid of dirs) {
      const label = byWnid.get(wnid);
      if (label === undefined) throw new DataError('INGEST', `val/${wnid} is not in the synset list`);
      for (const f of await listImages(join(valDir, wnid))) items.push({ kind: 'file', key: toKey(basename(f, extname(f))), label, path: join(valDir, wnid, f) });
    }
    return items;
  }
  const labelFile = o.valLabels ?? ['LOC_val_solution.csv', 'val.txt', 'ILSVRC2012_validation_ground_truth.txt'].map((f) => join(root, f)).find((f) => existsSync(f));
  if (!labelFile) throw new DataError('INGEST', `val/ holds images but no label file was found: pass valLabels (LOC_val_solution.csv, val.txt or ILSVRC2012_validation_ground_truth.txt)`);
  const files = await listImages(valDir);
  const labels = await readValLabels(labelFile, files, byWnid, classes, o);
  for (const f of files) {
    const label = labels.get(basename(f, extname(f)));
    if (label === undefined) throw new DataError('INGEST', `no label for val/${f} in ${labelFile}`);
    items.push({ kind: 'file', key: toKey(basename(f, extname(f))), label, path: join(valDir, f) });
  }
  return items;
}

/** image id (file name without extension) → class id */
async function readValLabels(path: string, files: string[], byWnid: Map<string, number>, classes: ClassInfo[], o: ImageNetOptions): Promise<Map<string, number>> {
  const text = await readFile(path, 'utf8');
  const lines = text.split(/\r?\n/).filter((l) => l.trim());
  const out = new Map<string, number>();
  const wnidLabel = (w: string) => {
    const l = byWnid.get(w);
    if (l === undefined) throw new DataError('INGEST', `${path}: ${w} is not in the synset list`);
    return l;
  };
  if (path.endsWith('.csv')) {
    for (const line of lines.slice(/^ImageId/i.test(lines[0]) ? 1 : 0)) {
      const [id, pred] = line.split(',');
      out.set(id.trim(), wnidLabel(pred.trim().split(/\s+/)[0]));
    }
    return out;
  }
  if (lines.every((l) => /^\d+$/.test(l.trim()))) {
    if (!o.devkitSynsets) throw new DataError('INGEST', `${path} holds ILSVRC2012_IDs, which follow the devkit's meta.mat order: pass devkitSynsets (wnids in that order, one per line)`);
    const order = (await readFile(o.devkitSynsets, 'utf8')).split(/\r?\n/).map((l) => l.trim().split(/\s+/)[0]).filter((w) => WNID.test(w));
    const sorted = files.map((f) => basename(f, extname(f)));
    if (sorted.length !== lines.length) throw new DataError('INGEST', `${path} has ${lines.length} labels for ${sorted.length} val images`);
    lines.forEach((l, i) => out.set(sorted[i], wnidLabel(order[Number(l) - 1])));
    return out;
  }
  for (const line of lines) {
    const [file, lab] = line.trim().split(/\s+/);
    const id = basename(file, extname(file));
    out.set(id, WNID.test(lab) ? wnidLabel(lab) : Number(lab));
    if (!WNID.test(lab) && !(Number(lab) >= 0 && Number(lab) < classes.length)) throw new DataError('INGEST', `${path}: bad label '${lab}' for ${file}`);
  }
  return out;
}
