import { Type } from 'typebox';

/**
 * RDFM's group priority against fleetd's. In RDFM the lowest number wins (default 25); in fleetd
 * the highest. The one is the other negated, so that the order holds: a default RDFM group has
 * fleetd priority -25, and a group made with fleetd's API (priority 0) is RDFM priority 0.
 */
export const defaultRdfmPriority = 25;

export const fleetdPriorityOf = (rdfmPriority: number): number => 0 - rdfmPriority;
// `0 -` rather than unary minus: a fleetd priority 0 is RDFM's 0, not -0.
export const rdfmPriorityOf = (fleetdPriority: number): number => 0 - fleetdPriority;

/** fleetd's range of priorities, negated: the same range. */
export const RdfmPriority = Type.Integer({ minimum: -1_000_000, maximum: 1_000_000 });
