import { Type } from 'typebox';
import { badRequest } from '../../core/errors.ts';

/**
 * What RDFM's device and management APIs share on the wire (antmicro/rdfm, see
 * /work/shared/protocols/rdfm.md §1): metadata keys, RFC 822 datetimes, integer ids.
 */

export const metadataKeys = {
  version: 'rdfm.software.version',
  deviceType: 'rdfm.hardware.devtype',
  macAddress: 'rdfm.hardware.macaddr',
} as const;

/** The keys every device metadata document must carry (auth, update check). */
export const requiredMetadataKeys = [metadataKeys.version, metadataKeys.deviceType, metadataKeys.macAddress] as const;

/** RDFM metadata: string values, and lists of strings (`rdfm.software.tags`). */
export type RdfmMetadata = Record<string, string | string[]>;

/** A device's metadata document (authentication, update check), with the three keys it must carry. */
export const MetadataDocument = Type.Record(Type.String(), Type.Union([Type.String({ maxLength: 1000 }), Type.Array(Type.String({ maxLength: 200 }), { maxItems: 100 })]), {
  propertyNames: { minLength: 1, maxLength: 200 },
  required: [...requiredMetadataKeys],
  // The three keys name the device, its type and its version: text, not lists.
  properties: Object.fromEntries(requiredMetadataKeys.map((key) => [key, { type: 'string', minLength: 1, maxLength: 200 }])),
  maxProperties: 100,
});

/** RDFM's error body: `{"error": "<message>"}`. */
export const errorBody = (message: string) => ({ error: message });

/** An ISO datetime in RDFM's form, RFC 822 in GMT: `Mon, 14 Aug 2023 13:03:27 GMT`. */
export const rfc822 = (iso: string): string => new Date(iso).toUTCString();

// What Python's email.utils parses: an optional day name, then day, month, year, time and zone.
const rfc822Shape = /^(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{4}\s+\d{2}:\d{2}(?::\d{2})?\s+(?:[+-]\d{4}|GMT|UTC?|[A-Z]{1,3})$/;

/** An RFC 822 datetime as ISO; 400 when it is not one. */
export function parseRfc822(text: string, field: string): string {
  const ms = rfc822Shape.test(text.trim()) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw badRequest(`${field} is not an RFC 822 datetime`);
  return new Date(ms).toISOString();
}
