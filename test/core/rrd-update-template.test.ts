import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FleetError } from '../../src/core/errors.ts';
import { parseUpdateTemplate } from '../../src/core/rrd-update-template.ts';

describe('rrduino update templates', () => {
  it('maps each reading of the template to the data source in its position', () => {
    assert.deepEqual(parseUpdateTemplate('N:{temperature}:{humidity}', ['temperature', 'humidity']), [
      { source: 'temperature', key: 'temperature' },
      { source: 'humidity', key: 'humidity' },
    ]);
    assert.deepEqual(parseUpdateTemplate('N:{t}:U:-1.5e3', ['a', 'b', 'c']), [
      { source: 'a', key: 't' },
      { source: 'b', constant: 'U' },
      { source: 'c', constant: '-1.5e3' },
    ]);
  });

  it('refuses what fleetd cannot follow: another time than N, a count that differs, format specs, glued fields', () => {
    for (const [template, sources] of [
      ['1700000000:{a}', ['a']],
      ['{time}:{a}', ['a']],
      ['N:{a}', ['a', 'b']],
      ['N:{a}:{b}', ['a']],
      ['N:{a:.1f}', ['a']],
      ['N:{a}{b}', ['a']],
      ['N:{}', ['a']],
      ['N:abc', ['a']],
      ['N:', []],
    ] as const) {
      assert.throws(() => parseUpdateTemplate(template, sources), (error: unknown) => error instanceof FleetError && error.code === 'bad_request', template);
    }
  });
});
