import { ClassInfo } from '../manifest';

/** One image to ingest: a file to copy as-is (validated) or raw pixels to encode. */
export type SourceItem =
  | { kind: 'file'; key: string; label: number; path: string }
  | { kind: 'raw'; key: string; label: number; pixels: Uint8Array; h: number; w: number; channels: 1 | 3 };

export interface DatasetSource {
  name: string;
  classes: ClassInfo[];
  /** split name → items (any order; ingestion shuffles them deterministically). */
  splits: { [split: string]: SourceItem[] };
}

/** WebDataset keys: no dots (the first dot starts the extension), nothing outside [A-Za-z0-9_-]. */
export function toKey(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]+/g, '_');
}
