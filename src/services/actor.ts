import type { Principal } from '../core/access.ts';

/** Who does a change and from where: what the audit log records. */
export interface Actor {
  principal: Principal;
  ip?: string;
  requestId?: string;
}

export function actorRef(principal: Principal): { type: string; id: string } {
  switch (principal.kind) {
    case 'user':
      return { type: 'user', id: principal.userId };
    case 'api_key':
      return { type: 'api_key', id: principal.keyId };
    case 'device':
      return { type: 'device', id: principal.deviceId };
  }
}

/** The system itself (the CLI on the server machine, start-up tasks). */
export const systemActor: Actor = {
  principal: { kind: 'user', userId: 'system', systemAdmin: true, orgRoles: new Map(), via: 'token' },
};
