import type { FastifySchemaCompiler } from 'fastify';
import { compileSchema } from '../core/validation.ts';

/**
 * Request bodies are checked exactly as sent (no coercion, unknown fields refused); the other parts
 * of a request are text and are coerced to their declared types.
 */
export const validatorCompiler: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  compileSchema(schema, { coerce: httpPart !== 'body' }) as ReturnType<FastifySchemaCompiler<object>>;
