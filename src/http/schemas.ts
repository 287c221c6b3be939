import { Type, type TSchema } from 'typebox';
import { maxPageSize } from '../store/page.ts';

/** Schemas shared by several routes. A route's own request and response shapes stay beside it. */

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code, such as not_found or validation_failed' }),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'ErrorBody', description: 'The body of every error response' },
);

export const Timestamp = Type.String({ format: 'date-time' });
export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
export const RoleSchema = Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin'), Type.Literal('owner')]);
export const NullableRole = Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin'), Type.Literal('owner'), Type.Null()]);

export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: maxPageSize, default: 50 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
};

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Nullable(Type.String({ description: 'Pass as cursor for the next page' })) });

export const Organization = Type.Object({ id: Type.String(), slug: Type.String(), name: Type.String(), createdAt: Timestamp, updatedAt: Timestamp });

export const User = Type.Object({
  id: Type.String(),
  email: Type.String(),
  name: Type.String(),
  systemAdmin: Type.Boolean(),
  external: Type.Boolean(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const Email = Type.String({ format: 'email', maxLength: 254 });
export const Password = Type.String({ minLength: 8, maxLength: 256 });
export const Name = Type.String({ minLength: 1, maxLength: 200 });

/** The error responses a route may give, for its schema and so for the OpenAPI document. */
export function errors(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries([400, ...statuses].map((s) => [s, Type.Ref('ErrorBody')]));
}

export const authErrors = (...statuses: number[]) => errors(401, 403, 429, ...statuses);
