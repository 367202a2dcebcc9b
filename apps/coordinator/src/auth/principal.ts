import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { checkpointBucket, formatScope, scopeCovers, type FieldError, type JobRecord, type JobSpec, type PathScope } from '@tensorfleet/control';

/** Who sent a request: set by ApiTokenGuard; null when the API has no tokens (open). */
export interface Principal {
  name?: string;
  access: 'write' | 'read';
  /** Null: the whole cluster (a token without scopes). */
  scopes: PathScope[] | null;
}

export const PRINCIPAL = Symbol('tensorfleet:principal');

/** The request's Principal (or null) as a handler parameter. */
export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal | null =>
  (ctx.switchToHttp().getRequest<Record<symbol, Principal | undefined>>()[PRINCIPAL]) ?? null);

/** Whether `p` may see and control `job`: any job without scopes, else only its own name's. */
export function mayAccess(p: Principal | null, job: Pick<JobRecord, 'owner'>): boolean {
  return !p?.scopes || (p.name !== undefined && job.owner === p.name);
}

/**
 * The paths of `spec` that `p` may not name: the dataset must be inside a scope, and the
 * checkpoint bucket one of the scopes' buckets (the job writes only `checkpoints/<its id>/`
 * there: the key prefix is the coordinator's, no spec field names it).
 */
export function pathErrors(p: Principal | null, spec: Pick<JobSpec, 'dataset' | 'checkpoint'>): FieldError[] {
  if (!p?.scopes) return [];
  const errors: FieldError[] = [];
  const allowed = p.scopes.map(formatScope).join(', ');
  if (!p.scopes.some((s) => scopeCovers(s, spec.dataset.bucket, spec.dataset.prefix))) {
    errors.push({ field: 'dataset.prefix', message: `s3://${spec.dataset.bucket}/${spec.dataset.prefix} is outside what token ${p.name} may read (${allowed})` });
  }
  const bucket = checkpointBucket(spec);
  if (!p.scopes.some((s) => s.bucket === bucket)) {
    errors.push({ field: 'checkpoint.bucket', message: `token ${p.name} may not write to bucket ${bucket}; its buckets: ${[...new Set(p.scopes.map((s) => s.bucket))].join(', ')}` });
  }
  return errors;
}
