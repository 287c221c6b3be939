import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initialSessionKey, lineMac, masterKey, nextSessionKey, SessionKey } from '../../../src/adapters/rrduino/session-key.ts';
import { firstKey, masterOf, ratchet, signedLine } from './client.ts';

/** rrduino.md "Worked example", byte for byte. */
const example = {
  psk: 'secret123',
  master: 'fcf730b6d95236ecd3c9fc2d92d7b6b2bb061514961aec041d6c7a7192f592e4',
  nonce: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  x1: '90d3405f462eb7ec8b89ec18b9e1cc223c1ce856749e6e4274dda1300bca53ae',
  k0: 'fa9ea56a838de714d9c924bf8292fdea506337bd1448ebc88489f64c13699c59',
  mac1: 'bf7154abbc7c7b2f0d1e72464e7249eb8d4ac4b9576b375d89b22d40e3aa12c4',
  line1: 'u temperature 21.50 bf7154abbc7c7b2f0d1e72464e7249eb8d4ac4b9576b375d89b22d40e3aa12c4\n',
  k1: 'b00b2d3581e06f1d127c2e40ae670d622e8ffe57202949cbf8f26d9c395816f8',
  mac2: '8f28a83ee8f175bde06d57b86311e7e0e10cf90801865eba79827365868e5641',
  k2: 'cdb199df7a698094d15af4e520b68e80fca0571238be3f6f4f914bca6d32b1af',
};
const hex = (text: string) => Buffer.from(text, 'hex');

describe('rrduino session keys: the worked example', () => {
  it("the server's derivation gives master, k0, the MACs and the ratchet of rrduino.md", () => {
    const master = masterKey(example.psk);
    assert.equal(master.toString('hex'), example.master);
    assert.equal(initialSessionKey(master, hex(example.nonce)).toString('hex'), example.k0);
    const k0 = hex(example.k0);
    assert.equal(lineMac(k0, Buffer.from('u temperature 21.50')).toString('hex'), example.mac1);
    assert.equal(nextSessionKey(master, k0).toString('hex'), example.k1);
    assert.equal(lineMac(hex(example.k1), Buffer.from('u temperature 21.75 humidity 40')).toString('hex'), example.mac2);
    assert.equal(nextSessionKey(master, hex(example.k1)).toString('hex'), example.k2);
  });

  it('the test client (written from rrduino.md) gives the same bytes, including the wire line', () => {
    const master = masterOf(example.psk);
    assert.equal(master.toString('hex'), example.master);
    const k0 = firstKey(master, hex(example.nonce));
    assert.equal(k0.toString('hex'), example.k0);
    assert.equal(signedLine(k0, [['temperature', '21.50']]), example.line1);
    const k1 = ratchet(master, k0);
    assert.equal(k1.toString('hex'), example.k1);
    assert.equal(signedLine(k1, [['temperature', '21.75'], ['humidity', '40']]), `u temperature 21.75 humidity 40 ${example.mac2}\n`);
    assert.equal(ratchet(master, k1).toString('hex'), example.k2);
    // One round: the message of round 1 is the nonce, the key always master.
    assert.equal(firstKeyAfter(1, master, hex(example.nonce)).toString('hex'), example.x1);
  });

  it('SessionKey verifies each line once, in order, in either hex case; a wrong or short MAC does not ratchet', () => {
    const key = new SessionKey(masterKey(example.psk), hex(example.nonce));
    const line1 = Buffer.from('u temperature 21.50');
    const line2 = Buffer.from('u temperature 21.75 humidity 40');
    assert.equal(key.verify(line2, example.mac2), false, 'the second line first');
    assert.equal(key.verify(line1, example.mac1.slice(0, 63)), false, 'short');
    assert.equal(key.verify(line1, `${example.mac1.slice(0, 63)}g`), false, 'not hex');
    assert.equal(key.verify(Buffer.from('u temperature 21.51'), example.mac1), false, 'tampered value');
    assert.equal(key.verify(line1, example.mac1.toUpperCase()), true, 'upper-case hex of the right MAC');
    assert.equal(key.verify(line1, example.mac1), false, 'replayed');
    assert.equal(key.verify(line2, example.mac2), true);
  });
});

function firstKeyAfter(rounds: number, master: Buffer, nonce: Buffer): Buffer {
  // The client's loop, stopped early: x1 of the worked example.
  let x = nonce;
  for (let i = 0; i < rounds; i++) x = ratchet(master, x);
  return x;
}
