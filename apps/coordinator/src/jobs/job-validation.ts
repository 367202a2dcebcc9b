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
