import type { ValidateFunction } from 'ajv';
import { IsObject, type Static, type TArray, type TObject, type TTuple } from 'typebox';
import type { AccessDeclaration, Principal, Resource } from '../../core/access.ts';
import { FleetError } from '../../core/errors.ts';
import { compileSchema, describeErrors } from '../../core/validation.ts';
import type { Params } from './messages.ts';

/**
 * What a JSON-RPC method declares: its name, its params, who may call it and what it does.
 * Object schemas take params by name (and by position with `positional`); array and tuple
 * schemas take them by position as they come. Object schemas should close with
 * `additionalProperties: false`, as request bodies do, so that unknown names are refused.
 */
export type ParamsSchema = TObject | TArray | TTuple;

/** What every call carries; transports extend it with what they know (the socket, the device). */
export interface CallContext {
  principal?: Principal;
}

/** Methods that need a principal get a context in which it is there. */
export type ContextFor<A extends AccessDeclaration, C extends CallContext> = A extends 'public' ? C : C & { principal: Principal };

export interface MethodDefinition<S extends ParamsSchema, A extends AccessDeclaration, C extends CallContext> {
  name: string;
  params: S;
  /** Accept an array too, its elements taken as the object's properties in their declared order. */
  positional?: S extends TObject ? boolean : never;
  access: A;
  /**
   * What the declared actions are asked about, from the validated params. Without it they are asked
   * about nothing in particular, which only system admins pass for actions within an organization.
   */
  resource?: A extends 'public' ? never : (params: Static<S>, context: ContextFor<A, C>) => Resource | Promise<Resource>;
  handler: (params: Static<S>, context: ContextFor<A, C>) => unknown;
}

/** A definition ready to be called, with the types its definition checked erased. */
export interface RegisteredMethod<C extends CallContext> {
  name: string;
  access: AccessDeclaration;
  /** The params as the handler takes them; throws a FleetError saying which are invalid. */
  readParams(params: Params | undefined): unknown;
  resource(params: unknown, context: C): Resource | Promise<Resource>;
  handler(params: unknown, context: C): unknown;
}

export function compileMethod<S extends ParamsSchema, A extends AccessDeclaration, C extends CallContext>(definition: MethodDefinition<S, A, C>): RegisteredMethod<C> {
  const { name, params: schema } = definition;
  if (name.startsWith('rpc.')) throw new Error(`Method ${name}: names starting with "rpc." are reserved for protocol extensions`);
  const byName = IsObject(schema);
  if (definition.positional && !byName) throw new Error(`Method ${name}: only object params can be mapped from positions`);
  const validate: ValidateFunction = compileSchema(schema);
  const names = byName ? Object.keys(schema.properties) : [];

  const readParams = (params: Params | undefined): unknown => {
    let value: unknown = params ?? (byName ? {} : []);
    if (Array.isArray(value) && definition.positional) {
      if (value.length > names.length) throw invalidParams([{ field: '', message: `takes at most ${names.length} parameters by position` }]);
      value = Object.fromEntries(value.map((element, index) => [names[index], element]));
    }
    if (!validate(value)) throw invalidParams(describeErrors(validate.errors));
    return value;
  };

  // The handler and resource functions were checked against S and A when the definition was written;
  // the dispatcher calls them only with params `validate` accepted and, unless public, with a principal.
  const erased = definition as unknown as { handler: RegisteredMethod<C>['handler']; resource?: RegisteredMethod<C>['resource'] };
  return {
    name,
    access: definition.access,
    readParams,
    resource: (params, context) => erased.resource?.(params, context) ?? {},
    handler: (params, context) => erased.handler(params, context),
  };
}

const invalidParams = (details: unknown) => new FleetError('validation_failed', 'Invalid params', { details });
