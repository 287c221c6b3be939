import type { Config } from '../../../config/keys.ts';
import type { Package } from '../../../services/packages/package.ts';
import { metadataKeys, rfc822 } from '../wire.ts';
import { storagePrefix } from './package-metadata.ts';

/** RDFM's names of fleetd's blob stores: its `local` driver keeps files in a folder, its `s3` driver in a bucket. */
export type RdfmDriver = 'local' | 's3';

export const driverOf = (config: Pick<Config, 'blobStorage'>): RdfmDriver => (config.blobStorage === '' ? 'local' : 's3');

/** The keys RDFM's drivers add to a package's metadata: where the file is, and its size (an integer, as upstream). */
const storageKeys: Record<RdfmDriver, { id: string; size: string }> = {
  local: { id: `${storagePrefix}local.uuid`, size: `${storagePrefix}local.length` },
  s3: { id: `${storagePrefix}s3.uuid`, size: `${storagePrefix}s3.size` },
};

/** An RDFM Package: `{"id","created","sha256","driver","metadata"}`, metadata holding what fleetd keeps apart. */
export interface RdfmPackage {
  id: number;
  created: string;
  sha256: string;
  driver: RdfmDriver;
  metadata: Record<string, string | number>;
}

export function rdfmPackage(pkg: Package, id: number, driver: RdfmDriver): RdfmPackage {
  const keys = storageKeys[driver];
  return {
    id,
    created: rfc822(pkg.createdAt),
    sha256: pkg.sha256,
    driver,
    metadata: {
      ...pkg.metadata,
      [metadataKeys.version]: pkg.version,
      [metadataKeys.deviceType]: pkg.deviceType,
      // fleetd's package id names the stored file, as RDFM's UUID does.
      [keys.id]: pkg.id,
      [keys.size]: pkg.size,
    },
  };
}
