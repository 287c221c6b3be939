/** Roles a user (or a user's API key) holds in an organization, weakest first. */
export const roles = ['viewer', 'operator', 'admin', 'owner'] as const;
export type Role = (typeof roles)[number];

export const roleRank = (role: Role): number => roles.indexOf(role);

export const atLeast = (role: Role, minimum: Role): boolean => roleRank(role) >= roleRank(minimum);

export const weaker = (a: Role, b: Role): Role => (roleRank(a) <= roleRank(b) ? a : b);

export const isRole = (value: unknown): value is Role => roles.includes(value as Role);
