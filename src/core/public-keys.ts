import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { badRequest } from './errors.ts';

const pemShape = /^\s*-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\s*$/;

/**
 * A PEM public key (SubjectPublicKeyInfo) given to fleetd, refused (400) otherwise. Only `BEGIN
 * PUBLIC KEY`: Node would also derive a public key from a private key or a certificate, and neither
 * should be stored. The caller checks the kind of key it accepts.
 */
export function parsePublicKeyPem(pem: string): KeyObject {
  if (!pemShape.test(pem)) throw badRequest('publicKey must be a PEM public key (-----BEGIN PUBLIC KEY-----)');
  try {
    return createPublicKey({ key: pem, format: 'pem' });
  } catch {
    throw badRequest('publicKey is not a readable PEM public key');
  }
}

/** The key in one canonical PEM form, as stored and compared. */
export const canonicalPem = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();

/** `SHA256:<base64>` of the DER key, as admins compare it with what the device or `openssl` shows. */
export function keyFingerprint(key: KeyObject | string): string {
  const der = (typeof key === 'string' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
  return `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`;
}
