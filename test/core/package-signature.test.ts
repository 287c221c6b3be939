import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FleetError } from '../../src/core/errors.ts';
import { decodeSignature, parseSigningKey, signatureVerifies } from '../../src/core/package-signature.ts';

const badRequest = (error: unknown) => error instanceof FleetError && error.code === 'bad_request';
const digestOf = (content: Buffer) => createHash('sha256').update(content).digest();
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
})();

describe('package signatures', () => {
  it('reads Ed25519 public keys only, in one canonical PEM, with a fingerprint', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const parsed = parseSigningKey(`\n${pem.replaceAll('\n', '\r\n')}`);
    assert.equal(parsed.pem, pem);
    const der = publicKey.export({ type: 'spki', format: 'der' });
    assert.equal(parsed.fingerprint, `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    for (const bad of [rsa, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'garbage', '', pem.replace(/[A-Za-z0-9]{10}/, 'AAAAAAAAAA')]) {
      assert.throws(() => parseSigningKey(bad), badRequest, bad.slice(0, 40));
    }
  });

  it('decodes standard base64 of 64 bytes only, whitespace aside', () => {
    const bytes = Buffer.alloc(64, 9);
    const text = bytes.toString('base64');
    assert.ok(decodeSignature(text).equals(bytes));
    assert.ok(decodeSignature(`${text.slice(0, 64)}\n${text.slice(64)}\n`).equals(bytes));
    for (const bad of ['', 'not base64', Buffer.alloc(63).toString('base64'), Buffer.alloc(65).toString('base64'), text.replace(/==$/, ''), bytes.toString('base64url'), `${text.slice(0, -3)}*==`]) {
      assert.throws(() => decodeSignature(bad), badRequest, bad);
    }
  });

  it('verifies a signature over the 32 bytes of the SHA-256 digest, not over the content', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const content = Buffer.from('firmware image');
    const sha256 = digestOf(content).toString('hex');
    assert.ok(signatureVerifies(publicKey, sha256, sign(null, digestOf(content), privateKey)));
    assert.ok(!signatureVerifies(publicKey, sha256, sign(null, content, privateKey)));
    assert.ok(!signatureVerifies(publicKey, sha256, sign(null, digestOf(Buffer.from('other')), privateKey)));
    assert.ok(!signatureVerifies(generateKeyPairSync('ed25519').publicKey, sha256, sign(null, digestOf(content), privateKey)));
  });

  it('verifies what the openssl commands of docs/ota.md produce', { skip: !hasOpenssl && 'openssl is not installed' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetd-sig-'));
    try {
      const at = (name: string) => join(dir, name);
      writeFileSync(at('firmware.bin'), Buffer.from('an image to sign'));
      execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', at('signing-key.pem')]);
      const pem = execFileSync('openssl', ['pkey', '-in', at('signing-key.pem'), '-pubout']).toString();
      execFileSync('openssl', ['dgst', '-sha256', '-binary', '-out', at('firmware.sha256'), at('firmware.bin')]);
      const signed = execFileSync('openssl', ['pkeyutl', '-sign', '-inkey', at('signing-key.pem'), '-rawin', '-in', at('firmware.sha256')]);
      const text = execFileSync('openssl', ['base64', '-A'], { input: signed }).toString();
      const key = parseSigningKey(pem);
      assert.ok(signatureVerifies(key.key, digestOf(Buffer.from('an image to sign')).toString('hex'), decodeSignature(text)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
