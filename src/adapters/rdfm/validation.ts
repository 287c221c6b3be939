import { FleetError } from '../../core/errors.ts';
import { compileSchema, describeErrors } from '../../core/validation.ts';

/** A validator whose refusal is RDFM's 400 `schema validation failed: …`. */
export function bodyValidator<T>(schema: object): (value: unknown) => T {
  const validate = compileSchema<T>(schema);
  return (value) => {
    if (validate(value)) return value;
    const first = describeErrors(validate.errors)[0];
    throw new FleetError('validation_failed', first ? `${first.field ? `${first.field} ` : ''}${first.message}` : 'invalid body');
  };
}
