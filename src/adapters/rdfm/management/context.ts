import type { FastifyRequest } from 'fastify';
import type { Principal } from '../../../core/access.ts';
import { badRequest, forbidden, notFound } from '../../../core/errors.ts';
import { actorOf } from '../../../http/access.ts';
import type { Actor } from '../../../services/actor.ts';
import type { Organization } from '../../../services/organizations.ts';
import type { RdfmKind } from '../ids.ts';
import type { RdfmRouteOptions } from '../plugin.ts';

/** Who calls a management route, and the organization RDFM's API stands for. */
export interface Management {
  actor: Actor;
  org: Organization;
}

/**
 * The organization a management call acts on. RDFM knows none: `rdfmOrg` names it; without it, an
 * API key's organization, or the only one its user belongs to. Whether the caller may do what it
 * asks there is the services' decision, as on fleetd's own routes.
 */
export async function organizationOf(principal: Principal, { services, config }: Pick<RdfmRouteOptions, 'services' | 'config'>): Promise<Organization> {
  if (principal.kind === 'device') throw forbidden("RDFM's management routes are for users and API keys, not devices");
  if (config.rdfmOrg !== '') return services.organizations.resolve(config.rdfmOrg);
  if (principal.kind === 'api_key') return services.organizations.resolve(principal.orgId);
  const [only, ...others] = principal.orgRoles.keys();
  if (only === undefined) throw forbidden('You belong to no organization');
  if (others.length > 0) throw badRequest('RDFM has no organizations and you belong to several: use an API key of one of them, or have the server set rdfmOrg');
  return services.organizations.resolve(only);
}

export async function managementOf(request: FastifyRequest, options: RdfmRouteOptions): Promise<Management> {
  const actor = actorOf(request);
  return { actor, org: await organizationOf(actor.principal, options) };
}

const integer = /^[0-9]{1,10}$/;

/**
 * The fleetd id an RDFM integer in a path names; 404 for anything else, as RDFM's `<int:id>`
 * routes answer. Whether the object exists in the caller's organization is for the service to say.
 */
export async function fleetdIdOf(options: RdfmRouteOptions, kind: RdfmKind, text: string, what: string): Promise<string> {
  const id = integer.test(text) ? await options.ids.fleetdId(kind, Number(text)) : undefined;
  if (id === undefined) throw notFound(what);
  return id;
}
