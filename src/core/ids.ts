import { randomBytes } from 'node:crypto';

const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/**
 * A new identifier such as `org_01jb3x...`: a type prefix, 48 bits of milliseconds, 80 random bits.
 * Identifiers sort by creation time, which is what keyset pagination orders by.
 */
export function newId(prefix: string, now = Date.now()): string {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, Math.floor(now / 2 ** 32));
  view.setUint32(2, now >>> 0);
  bytes.set(randomBytes(10), 6);
  return `${prefix}_${base32(bytes)}`;
}

/**
 * A generator of identifiers like `newId`'s that increase strictly even within one millisecond (the
 * random part of the previous one, plus one), so that "everything after id X" misses nothing this
 * process created. Used for hub events, which clients replay by the id of the last one they saw.
 */
export function monotonicIds(prefix: string, clock: () => number = Date.now): () => string {
  let lastTime = -1;
  let last = new Uint8Array(16);
  return () => {
    const now = clock();
    const bytes = new Uint8Array(16);
    if (now <= lastTime) {
      bytes.set(last);
      for (let i = 15; i >= 6; i--) {
        bytes[i] = (bytes[i]! + 1) & 0xff;
        if (bytes[i] !== 0) break;
      }
    } else {
      lastTime = now;
      const view = new DataView(bytes.buffer);
      view.setUint16(0, Math.floor(now / 2 ** 32));
      view.setUint32(2, now >>> 0);
      // The top bit of the random part stays clear, so that a burst within one millisecond cannot overflow it.
      bytes.set(randomBytes(10), 6);
      bytes[6]! &= 0x7f;
    }
    last = bytes;
    return `${prefix}_${base32(bytes)}`;
  };
}

/** URL-safe random text with `bytes` bytes of entropy, for secrets. */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
