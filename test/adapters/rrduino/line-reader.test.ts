import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineReader, LineTooLongError } from '../../../src/adapters/rrduino/line-reader.ts';

describe('rrduino line reader', () => {
  it('gives every line of one chunk, and a line split over chunks once whole', () => {
    const reader = new LineReader(100);
    reader.push(Buffer.from('h fridge\nu a 1 x\nu b'));
    assert.equal(reader.next()?.toString(), 'h fridge');
    assert.equal(reader.next()?.toString(), 'u a 1 x');
    assert.equal(reader.next(), undefined);
    assert.equal(reader.partial, true);
    reader.push(Buffer.from(' 2'));
    assert.equal(reader.next(), undefined);
    reader.push(Buffer.from(' y\r\n\n'));
    assert.equal(reader.next()?.toString(), 'u b 2 y\r');
    assert.equal(reader.next()?.toString(), '');
    assert.equal(reader.next(), undefined);
    assert.equal(reader.partial, false);
  });

  it('refuses a line over the limit, whole or still arriving', () => {
    const whole = new LineReader(10);
    whole.push(Buffer.from('0123456789\n'));
    assert.equal(whole.next()?.length, 10);
    whole.push(Buffer.from('0123456789a\n'));
    assert.throws(() => whole.next(), LineTooLongError);
    const arriving = new LineReader(10);
    arriving.push(Buffer.from('0123456789'));
    assert.equal(arriving.next(), undefined);
    arriving.push(Buffer.from('a'));
    assert.throws(() => arriving.next(), LineTooLongError);
  });
});
