// Object-store paths a job spec or an API token names, and what a token may name.
// S3 keys are not file paths (`..` is a literal key segment to S3 itself), but S3 gateways,
// MinIO's file backend and every tool that mirrors a bucket to disk treat them as paths: a
// prefix is kept to plain relative segments so that it means the same everywhere.

/** Key prefix every job's checkpoints live under (`checkpoints/<jobId>/<step>/`): no dataset may be there. */
export const CHECKPOINTS_ROOT = 'checkpoints';

/** Why `prefix` is not a plain relative key prefix (no leading "/", empty, "." or ".." segments), or undefined. */
export function prefixProblem(prefix: string): string | undefined {
  if ([...prefix].some((c) => c.charCodeAt(0) < 0x20 || c === '\x7f' || c === '\\')) return 'must not contain control characters or "\\"';
  const segments = prefix.split('/');
  if (segments[0] === '' && prefix.length > 0) return 'must not start with "/": a prefix is relative to its bucket';
  if (segments.some((x) => x === '')) return 'must not contain empty segments ("//")';
  if (segments.some((x) => x === '.' || x === '..')) return 'must not contain "." or ".." segments';
  return undefined;
}

/** A dataset prefix: plain, and not inside the jobs' checkpoint folders. */
export function datasetPrefixProblem(prefix: string): string | undefined {
  const p = prefixProblem(prefix);
  if (p) return p;
  if (prefix === CHECKPOINTS_ROOT || prefix.startsWith(`${CHECKPOINTS_ROOT}/`)) {
    return `must not be under ${CHECKPOINTS_ROOT}/: that is where jobs write their checkpoints`;
  }
  return undefined;
}

/**
 * One pattern of a token's scope: `bucket/prefix` (that prefix and what is under it, by
 * whole segments), `bucket/prefix*` (every prefix starting with those characters), or
 * `bucket` / `bucket/*` (the whole bucket).
 */
export interface PathScope {
  bucket: string;
  /** '' = the whole bucket. */
  prefix: string;
  /** The pattern ended in `*`: a plain string prefix instead of whole segments. */
  wildcard: boolean;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Parses `bucket[/prefix][*]`; throws an Error saying what is wrong. */
export function parseScope(pattern: string): PathScope {
  const slash = pattern.indexOf('/');
  const bucket = slash < 0 ? pattern.replace(/\*$/, '') : pattern.slice(0, slash);
  if (!BUCKET.test(bucket)) throw new Error(`"${pattern}": the bucket must be an S3 bucket name (3-63 lower-case letters, digits, "." or "-"), not a pattern`);
  const rest = slash < 0 ? '' : pattern.slice(slash + 1);
  const wildcard = rest.endsWith('*');
  const prefix = wildcard ? rest.slice(0, -1) : rest;
  if (prefix.includes('*')) throw new Error(`"${pattern}": "*" may only end a pattern`);
  // A wildcard prefix may end in "/" (`data/team-a/*`); its segments must still be plain.
  const plain = prefix.replace(/\/$/, '');
  const problem = plain ? prefixProblem(plain) : undefined;
  if (problem) throw new Error(`"${pattern}": the prefix ${problem}`);
  if (!wildcard && prefix.endsWith('/')) throw new Error(`"${pattern}": end the prefix without "/" (or with "/*")`);
  return { bucket, prefix, wildcard: wildcard || prefix === '' };
}

/** Whether `scope` covers key prefix `prefix` of `bucket` (an already valid prefix, see prefixProblem). */
export function scopeCovers(scope: PathScope, bucket: string, prefix: string): boolean {
  if (scope.bucket !== bucket) return false;
  if (scope.wildcard) return prefix.startsWith(scope.prefix);
  return prefix === scope.prefix || prefix.startsWith(`${scope.prefix}/`);
}

/** Formats a scope back as its pattern. */
export function formatScope(scope: PathScope): string {
  return `${scope.bucket}/${scope.prefix}${scope.wildcard ? '*' : ''}`;
}
