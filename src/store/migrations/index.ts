import type { Migration } from 'kysely';
import * as identity from './0001_identity.ts';

/** Every migration, in order. A name, once released, never changes: databases record it. */
export const migrations: Record<string, Migration> = {
  '0001_identity': identity,
};
