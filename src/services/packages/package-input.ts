import { badRequest, FleetError } from '../../core/errors.ts';

/** What an uploader says of a package besides its content. */
export interface PackageInput {
  version: string;
  deviceType: string;
  /** Free string keys; `requires:<key>` ones are the conditions of a delta package. */
  metadata?: Record<string, string>;
  /** Base64 detached Ed25519 signature over the 32 bytes of the content's SHA-256 digest. */
  signature?: string;
}

const maxMetadataKeys = 100;
const maxMetadataKeyLength = 200;
const maxMetadataValueLength = 1000;
const maxVersionLength = 200;

// Names and keys end up in file names, logs and RDFM's metadata: no control characters.
const controlCharacters = /[\u0000-\u001f\u007f]/;

const invalid = (field: string, message: string) => new FleetError('validation_failed', `Invalid package: ${field} ${message}`, { details: [{ field, message }] });

function checkName(field: 'version' | 'deviceType', value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxVersionLength) throw invalid(field, `must be a text of 1 to ${maxVersionLength} characters`);
  if (controlCharacters.test(value) || value.trim() !== value) throw invalid(field, 'must not have control characters or surrounding spaces');
  return value;
}

/**
 * Checks what an uploader sends (before any byte of content is stored): names, and metadata of at
 * most 100 string keys of 1–200 characters with values of at most 1000.
 */
export function checkPackageInput(input: PackageInput): Required<Pick<PackageInput, 'version' | 'deviceType' | 'metadata'>> {
  const version = checkName('version', input.version);
  const deviceType = checkName('deviceType', input.deviceType);
  const metadata = input.metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw invalid('metadata', 'must be an object of string values');
  const entries = Object.entries(metadata);
  if (entries.length > maxMetadataKeys) throw invalid('metadata', `may have at most ${maxMetadataKeys} keys`);
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > maxMetadataKeyLength || controlCharacters.test(key)) {
      throw invalid(`metadata.${key.slice(0, 50)}`, `keys must have 1 to ${maxMetadataKeyLength} characters and no control characters`);
    }
    if (typeof value !== 'string' || value.length > maxMetadataValueLength) throw invalid(`metadata.${key}`, `must be a text of at most ${maxMetadataValueLength} characters`);
  }
  return { version, deviceType, metadata: Object.fromEntries(entries) };
}

export const signatureRequired = () => badRequest('This server accepts signed packages only: send signature, the base64 Ed25519 signature of the SHA-256 digest');
