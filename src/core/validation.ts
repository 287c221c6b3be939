import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

/**
 * The one validation layer: TypeBox schemas (which also produce the OpenAPI document) checked by Ajv.
 * Request bodies are checked as sent (no type coercion, unknown fields refused); query strings,
 * path parameters and headers are text by nature and so are coerced to the declared types.
 */
function createAjv(coerce: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: true,
    coerceTypes: coerce ? 'array' : false,
    removeAdditional: false,
    useDefaults: true,
    strict: false,
  });
  addFormats.default(ajv);
  return ajv;
}

const strictAjv = createAjv(false);
const coercingAjv = createAjv(true);

export function compileSchema<T = unknown>(schema: object, options: { coerce?: boolean } = {}): ValidateFunction<T> {
  return (options.coerce ? coercingAjv : strictAjv).compile<T>(schema);
}

export interface FieldProblem {
  /** Where the problem is, as a dotted path (`user.email`); empty for the whole value. */
  field: string;
  message: string;
}

/** Turns Ajv's errors into one problem per field, in words a user understands. */
export function describeErrors(errors: ErrorObject[] | null | undefined): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const error of errors ?? []) {
    const base = error.instancePath.replace(/^\//, '').replaceAll('/', '.');
    const params = error.params as Record<string, unknown>;
    let field = base;
    let message: string;
    switch (error.keyword) {
      case 'additionalProperties':
        field = join(base, String(params.additionalProperty));
        message = 'is not a known field';
        break;
      case 'required':
        field = join(base, String(params.missingProperty));
        message = 'is required';
        break;
      case 'type':
        message = `must be ${article(String(params.type))}`;
        break;
      case 'enum':
        message = `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
        break;
      case 'const':
        message = `must be ${JSON.stringify(params.allowedValue)}`;
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        message = `must be ${String(params.comparison)} ${String(params.limit)}`;
        break;
      default:
        message = error.message ?? 'is not valid';
    }
    if (!problems.some((p) => p.field === field && p.message === message)) problems.push({ field, message });
  }
  return problems;
}

const join = (base: string, name: string) => (base ? `${base}.${name}` : name);
const article = (type: string) => (/^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);
