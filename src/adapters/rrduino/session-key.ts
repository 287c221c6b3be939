import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * rrduino's keys (rrduino.md "Hello / session key derivation", "Update line and MAC"): the master key
 * is SHA-256 of the pre-shared key; each session starts from a random nonce hashed 128 times with
 * it; every verified update line moves the key one step on, so a line verifies only once.
 */

/** Bytes of the nonce the server sends after a hello. */
export const nonceLength = 32;
/** Hex characters of a line's MAC. */
export const macHexLength = 64;
const initialRounds = 128;

const hmac = (key: Buffer, message: Buffer): Buffer => createHmac('sha256', key).update(message).digest();

/** SHA-256 of the pre-shared key's bytes: what the Arduino computes too (`stringToKey`). */
export const masterKey = (psk: string): Buffer => createHash('sha256').update(psk, 'utf8').digest();

/** k0: the nonce hashed 128 times, always keyed with the master key, each round's raw output the next message. */
export function initialSessionKey(master: Buffer, nonce: Buffer): Buffer {
  let key = nonce;
  for (let round = 0; round < initialRounds; round++) key = hmac(master, key);
  return key;
}

/** k(i+1) = HMAC(master, k(i)). */
export const nextSessionKey = (master: Buffer, key: Buffer): Buffer => hmac(master, key);

/** HMAC-SHA256 of the MACed bytes of a line (`u k1 v1 ...`, without the last space and the MAC). */
export const lineMac = (key: Buffer, maced: Buffer): Buffer => hmac(key, maced);

/** The key of one session: checks each line's MAC against the current key, then ratchets. */
export class SessionKey {
  private key: Buffer;

  constructor(
    private readonly master: Buffer,
    nonce: Buffer,
  ) {
    this.key = initialSessionKey(master, nonce);
  }

  /**
   * Whether `presented` is the MAC of `maced` under the current key; when it is, the key moves on
   * (before the data is applied, as upstream does). Upper-case hex is taken too (decoding it equals
   * lower-casing first), and the bytes are compared in constant time: only the format check, which
   * says nothing about the key, may return early.
   */
  verify(maced: Buffer, presented: string): boolean {
    if (presented.length !== macHexLength || !/^[0-9a-fA-F]+$/.test(presented)) return false;
    if (!timingSafeEqual(Buffer.from(presented, 'hex'), lineMac(this.key, maced))) return false;
    this.key = nextSessionKey(this.master, this.key);
    return true;
  }
}
