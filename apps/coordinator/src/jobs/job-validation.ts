import { BadRequestException, ForbiddenException, type PipeTransform } from '@nestjs/common';
import type { Field, FieldError, Presence } from '@tensorfleet/control';

/** The 400 body: `message` lists `field: message`, `fields` the dotted field names. */
export function fieldErrors(errors: FieldError[]): BadRequestException {
  return new BadRequestException(errorBody(400, 'Bad Request', errors));
}

/** The same body as a 403: fields the caller's token may not name (a scoped token's paths). */
export function forbiddenFields(errors: FieldError[]): ForbiddenException {
  return new ForbiddenException(errorBody(403, 'Forbidden', errors));
}

function errorBody(statusCode: number, error: string, errors: FieldError[]) {
  return {
    statusCode, error,
    message: errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)),
    fields: errors.map((e) => e.field),
  };
}

/**
 * Checks a body against a schema of @tensorfleet/control (a 400 naming every bad field) and
 * hands it on as sent: the service fills the defaults (the schema's, in one place).
 */
export function schemaPipe<I>(schema: Field<unknown, Presence, I>, opts: { optional?: boolean } = {}): PipeTransform<unknown, I> {
  return {
    transform(body: unknown): I {
      // No body at all (POST /jobs/:id/resume without one): an empty object, where that is allowed.
      const value = opts.optional && (body === undefined || body === null || body === '') ? {} : body;
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw fieldErrors([{ field: '', message: 'the body must be a JSON object' }]);
      const errors = schema.validate(value);
      if (errors.length) throw fieldErrors(errors);
      return value as I;
    },
  };
}

/** A paging query parameter: absent = `fallback`, else an integer in [min, max], or a 400 naming it. */
export function pageParam(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw fieldErrors([{ field: name, message: `must be an integer from ${min} to ${max}, got "${value}"` }]);
  }
  return n;
}
