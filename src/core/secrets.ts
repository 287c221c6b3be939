import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify, type Algorithm } from '@node-rs/argon2';

/** SHA-256 of a high-entropy secret (API key, refresh token): enough, and cheap on every request. */
export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  // Compare something of the same length either way so the timing does not reveal the length.
  if (left.length !== right.length) return timingSafeEqual(left, left) && false;
  return timingSafeEqual(left, right);
}

// Argon2id (the enum is const, so its value is written out); OWASP's minimum parameters.
const argon2Options = { algorithm: 2 as Algorithm.Argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 };

export const hashPassword = (password: string): Promise<string> => argon2Hash(password, argon2Options);

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2Verify(hash, password);
  } catch {
    return false;
  }
}

/**
 * A hash to verify against when the user does not exist, so that a login for an unknown email
 * takes as long as one with a wrong password.
 */
export const decoyPasswordHash = hashPassword(randomBytes(16).toString('hex'));

const keyAlphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
const keyPattern = /^fk_([0-9a-z]{12})_([0-9a-z]{40})$/;

function randomText(length: number): string {
  const bytes = randomBytes(length * 2);
  let out = '';
  // 36 does not divide 256: drop the bytes that would skew the distribution.
  for (const byte of bytes) {
    if (byte >= 252) continue;
    out += keyAlphabet[byte % 36];
    if (out.length === length) return out;
  }
  return out + randomText(length - out.length);
}

/** A new API key `fk_<prefix>_<secret>`: the prefix finds it, only the secret's hash is stored. */
export function newApiKey(): { key: string; prefix: string; secretHash: string } {
  const prefix = randomText(12);
  const secret = randomText(40);
  return { key: `fk_${prefix}_${secret}`, prefix, secretHash: sha256(secret) };
}

export function parseApiKey(key: string): { prefix: string; secret: string } | undefined {
  const match = keyPattern.exec(key);
  return match ? { prefix: match[1]!, secret: match[2]! } : undefined;
}

export const looksLikeApiKey = (token: string): boolean => token.startsWith('fk_');
