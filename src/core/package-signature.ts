import { verify, type KeyObject } from 'node:crypto';
import { badRequest } from './errors.ts';
import { canonicalPem, keyFingerprint, parsePublicKeyPem } from './public-keys.ts';

/**
 * Detached package signatures: Ed25519 over the 32 raw bytes of the content's SHA-256 digest, so that
 * a signer hashes a package of any size once (`openssl dgst -sha256 -binary`) and signs 32 bytes,
 * and the server checks the digest it computed while storing the content, without reading it again.
 */

export interface SigningKey {
  /** The key in one canonical PEM form, as stored. */
  pem: string;
  key: KeyObject;
  /** `SHA256:<base64>` of the DER key, as admins compare it with what `openssl` shows. */
  fingerprint: string;
}

const ed25519SignatureLength = 64;

/** An Ed25519 public key in PEM (SubjectPublicKeyInfo), refused (400) otherwise. */
export function parseSigningKey(pem: string): SigningKey {
  const key = parsePublicKeyPem(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw badRequest(`publicKey must be an Ed25519 key, not ${key.asymmetricKeyType ?? 'unknown'}`);
  return { pem: canonicalPem(key), key, fingerprint: keyFingerprint(key) };
}

/**
 * The 64 signature bytes of standard base64 text (padding required); 400 otherwise. Whitespace is
 * dropped first: `openssl base64` breaks its output into lines.
 */
export function decodeSignature(text: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]{86}==$/.test(compact)) throw badRequest(`signature must be the standard base64 of a ${ed25519SignatureLength}-byte Ed25519 signature`);
  return Buffer.from(compact, 'base64');
}

/** Whether `signature` signs the digest (hex SHA-256) with `key`. */
export function signatureVerifies(key: KeyObject, sha256Hex: string, signature: Buffer): boolean {
  return verify(null, Buffer.from(sha256Hex, 'hex'), key, signature);
}
