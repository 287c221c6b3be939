import { constants, verify, type KeyObject } from 'node:crypto';
import { badRequest, unauthenticated } from '../../core/errors.ts';
import { canonicalPem, parsePublicKeyPem } from '../../core/public-keys.ts';
import type { StateDocument } from '../../core/device-state.ts';

/** What a device signs to check in: the raw bytes of this JSON body are what the signature covers. */
export interface CheckinBody {
  /** The id the device calls itself by. */
  deviceId: string;
  /** PEM SubjectPublicKeyInfo, Ed25519 or RSA of at least 2048 bits. */
  publicKey: string;
  /** Milliseconds since the epoch, when the device signed. */
  timestamp: number;
  metadata?: StateDocument;
}

export interface CheckinKey {
  /** The key in one canonical PEM form, as stored and compared. */
  pem: string;
  key: KeyObject;
}

const minRsaBits = 2048;
// Verifying with a larger modulus or exponent costs more for nothing a device needs.
const maxRsaBits = 8192;
const maxRsaExponent = 2n ** 32n;
const base64Shape = /^[A-Za-z0-9+/]+={0,2}$/;

/** The device's public key, refused (400) unless it is a PEM public key of a kind fleetd verifies. */
export function parseCheckinKey(pem: string): CheckinKey {
  const key = parsePublicKeyPem(pem);
  if (key.asymmetricKeyType === 'rsa') {
    const { modulusLength = 0, publicExponent = 0n } = key.asymmetricKeyDetails ?? {};
    if (modulusLength < minRsaBits || modulusLength > maxRsaBits) throw badRequest(`An RSA publicKey must have ${minRsaBits} to ${maxRsaBits} bits; this one has ${modulusLength}`);
    if (publicExponent > maxRsaExponent) throw badRequest('The RSA publicKey has an unusually large public exponent');
  } else if (key.asymmetricKeyType !== 'ed25519') {
    throw badRequest(`publicKey must be an Ed25519 or RSA key, not ${key.asymmetricKeyType ?? 'unknown'}`);
  }
  return { pem: canonicalPem(key), key };
}

/** Refuses (401) unless `signature` (base64) signs `body` with the key: Ed25519, or RSA-SHA256 PKCS#1 v1.5. */
export function verifyCheckinSignature(key: KeyObject, body: Buffer, signature: string | undefined): void {
  if (!signature) throw unauthenticated('A check-in must carry the X-Fleetd-Signature header: the base64 signature of the body');
  const bytes = base64Shape.test(signature) ? Buffer.from(signature, 'base64') : Buffer.alloc(0);
  const valid =
    bytes.length > 0 &&
    (key.asymmetricKeyType === 'ed25519' ? verify(null, body, key, bytes) : verify('sha256', body, { key, padding: constants.RSA_PKCS1_PADDING }, bytes));
  if (!valid) throw unauthenticated('The check-in signature does not match the body and publicKey');
}

/** Refuses (401) a timestamp further than `windowSeconds` from the server clock. */
export function checkCheckinClock(timestamp: number, windowSeconds: number, now = Date.now()): void {
  if (Math.abs(timestamp - now) > windowSeconds * 1000) {
    throw unauthenticated(`The check-in timestamp is more than ${windowSeconds} s away from the server clock (${new Date(now).toISOString()}); fix the device's clock`);
  }
}
