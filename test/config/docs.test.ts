import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { configKeyNames, envName, flagName } from '../../src/config/keys.ts';

describe('docs/configuration.md', () => {
  it('documents every configuration key with its environment variable and flag', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    for (const key of configKeyNames) {
      assert.ok(doc.includes(`| \`${key}\` | \`${envName(key)}\` | \`${flagName(key)}\` |`), `${key} is not in the table of docs/configuration.md`);
    }
  });
});
