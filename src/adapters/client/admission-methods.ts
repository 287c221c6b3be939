import { Type } from 'typebox';
import { isSystemAdmin, type Principal, type Resource } from '../../core/access.ts';
import type { Hub } from '../../hub/hub.ts';
import { PageQuery } from '../../http/schemas.ts';
import type { Dispatcher } from '../jsonrpc/dispatcher.ts';
import { Tag } from './device-methods.ts';
import { actorOf, type ClientContext } from './dispatcher.ts';
import { OrgParam, orgOf } from './org.ts';

const PendingId = Type.String({ minLength: 1, maxLength: 100 });

/**
 * Which waiting devices a call is about: those of the call's organization. A system admin who names
 * none decides on any, and lists those waiting without an organization (accepting one of those needs
 * org: where the device goes).
 */
async function waitingScope(hub: Hub, principal: Principal, org: string | undefined): Promise<{ resource: Resource; orgId?: string }> {
  if (org === undefined && isSystemAdmin(principal)) return { resource: {} };
  const { id } = await orgOf(hub, principal, org);
  return { resource: { orgId: id }, orgId: id };
}

export function registerAdmissionMethods(dispatcher: Dispatcher<ClientContext>, hub: Hub): void {
  const { admission } = hub.services;
  const resource = async ({ org }: { org?: string }, { principal }: { principal: Principal }) => (await waitingScope(hub, principal, org)).resource;
  const manage = { actions: ['device.manage'] } as const;

  dispatcher.register({
    name: 'Device.ListPending',
    params: Type.Object({ org: OrgParam, state: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('denied')])), ...PageQuery }, { additionalProperties: false }),
    access: manage,
    resource,
    handler: async ({ org, state, limit, cursor }, { principal }) => {
      const { orgId } = await waitingScope(hub, principal, org);
      return admission.listPending(principal, orgId, { state }, { limit, cursor });
    },
  });

  dispatcher.register({
    name: 'Device.Accept',
    params: Type.Object(
      {
        pendingId: PendingId,
        org: OrgParam,
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        tags: Type.Optional(Type.Array(Tag, { maxItems: 50 })),
      },
      { additionalProperties: false },
    ),
    access: manage,
    resource,
    handler: async ({ pendingId, org, name, tags }, context) => {
      const { orgId } = await waitingScope(hub, context.principal, org);
      return admission.accept(actorOf(context), pendingId, { org: orgId, name, tags });
    },
  });

  dispatcher.register({
    name: 'Device.Deny',
    params: Type.Object({ pendingId: PendingId, org: OrgParam }, { additionalProperties: false }),
    access: manage,
    resource,
    handler: async ({ pendingId, org }, context) => {
      const { orgId } = await waitingScope(hub, context.principal, org);
      return admission.deny(actorOf(context), pendingId, { org: orgId });
    },
  });
}
