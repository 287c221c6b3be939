import { badRequest } from '../../../core/errors.ts';
import type { PackageInput } from '../../../services/packages/package-input.ts';
import { metadataKeys } from '../wire.ts';

/** The prefix of the keys RDFM's storage drivers write: nobody uploads them. */
export const storagePrefix = 'rdfm.storage.';
/** Where RDFM's local driver would keep the file: accepted from rdfm-mgmt, but fleetd decides where packages go. */
const storageDirectoryKey = 'rdfm.storage.directory';

/**
 * An RDFM upload's form fields as fleetd's package: every text field is a metadata key (RDFM's
 * upload has no other fields), `rdfm.software.version` and `rdfm.hardware.devtype` become the
 * version and device type, and the rest stays metadata (`requires:…`, `rdfm.software.supports_*`).
 */
export function rdfmPackageInput(fields: ReadonlyMap<string, unknown>): PackageInput {
  const metadata: Record<string, string> = {};
  for (const [key, value] of fields) {
    // @fastify/multipart parses a part sent as application/json: RDFM's metadata is text only.
    if (typeof value !== 'string') throw badRequest(`metadata ${JSON.stringify(key.slice(0, 100))} must be text`);
    if (key === storageDirectoryKey) checkStorageDirectory(value);
    else if (key.startsWith(storagePrefix)) throw badRequest('provided metadata contains reserved key');
    else metadata[key] = value;
  }
  const version = required(metadata, metadataKeys.version);
  const deviceType = required(metadata, metadataKeys.deviceType);
  delete metadata[metadataKeys.version];
  delete metadata[metadataKeys.deviceType];
  return { version, deviceType, metadata };
}

function required(metadata: Record<string, string>, key: string): string {
  const value = metadata[key];
  if (value === undefined) throw badRequest(`${key} required`);
  return value;
}

/** RDFM refuses a storage directory that leaves its package folder; so does fleetd, though it does not use it. */
function checkStorageDirectory(directory: string): void {
  const segments = directory.split(/[/\\]/);
  if (directory.startsWith('/') || directory.startsWith('\\') || segments.includes('..') || /[\u0000-\u001f\u007f]/.test(directory)) {
    throw badRequest(`invalid ${storageDirectoryKey}: it must stay inside the package folder`);
  }
}
