import { BadRequestException, ValidationPipe } from '@nestjs/common';
import { flattenValidationErrors, JOB_SPEC_VALIDATOR_OPTIONS, type FieldError } from '@tensorfleet/control';

/** The 400 body: `message` lists `field: message`, `fields` the dotted field names. */
export function fieldErrors(errors: FieldError[]): BadRequestException {
  return new BadRequestException({
    statusCode: 400,
    error: 'Bad Request',
    message: errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)),
    fields: errors.map((e) => e.field),
  });
}

/** Validates a body against its DTO class with the job spec's validator options. */
export function specValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    ...JOB_SPEC_VALIDATOR_OPTIONS,
    transform: true,
    validateCustomDecorators: false,
    exceptionFactory: (errors) => fieldErrors(flattenValidationErrors(errors)),
  });
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
