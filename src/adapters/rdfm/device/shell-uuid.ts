/**
 * fleetd's shell session ids (`shl_` and 26 base32 characters: 16 bytes) and RDFM's session UUIDs
 * (the same 16 bytes as 8-4-4-4-12 hex), both ways, so the device's dial-back names the session.
 */

const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
const sessionPattern = /^shl_[0-9a-hjkmnp-tv-z]{26}$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function sessionToUuid(sessionId: string): string {
  if (!sessionPattern.test(sessionId)) throw new Error(`not a shell session id: ${sessionId}`);
  const bytes: number[] = [];
  let value = 0;
  let bits = 0;
  for (const char of sessionId.slice(4)) {
    value = ((value << 5) | alphabet.indexOf(char)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  const hex = Buffer.from(bytes.slice(0, 16)).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The session id a UUID names, or undefined when the text is not a UUID. */
export function uuidToSession(uuid: string): string | undefined {
  const lower = uuid.toLowerCase();
  if (!uuidPattern.test(lower)) return undefined;
  let out = 'shl_';
  let value = 0;
  let bits = 0;
  for (const byte of Buffer.from(lower.replaceAll('-', ''), 'hex')) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += alphabet[(value >>> bits) & 31];
    }
  }
  return out + alphabet[(value << (5 - bits)) & 31];
}
