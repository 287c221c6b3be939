import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorCodes, FleetError, type ErrorCode } from '../../../src/core/errors.ts';

/**
 * The one table that gives FleetError codes their JSON-RPC codes: spec codes only where they mean
 * the same, every other one in the server-error range and distinct, mirroring the HTTP status.
 */

const specCodes: Partial<Record<ErrorCode, number>> = { bad_request: -32602, validation_failed: -32602, internal: -32603 };

describe('JSON-RPC codes of FleetErrors', () => {
  for (const [code, { status, rpc }] of Object.entries(errorCodes) as [ErrorCode, { status: number; rpc: number }][]) {
    it(`${code} (${status}) → ${rpc}`, () => {
      assert.ok(Number.isInteger(rpc));
      assert.equal(new FleetError(code, 'x').rpcCode, rpc);
      const spec = specCodes[code];
      if (spec !== undefined) {
        assert.equal(rpc, spec);
        return;
      }
      assert.ok(rpc <= -32000 && rpc >= -32099, 'in the server-error range');
      assert.equal(rpc, status < 500 ? -32000 - (status - 400) : -32050 - (status - 500), 'mirrors the HTTP status');
    });
  }

  it('gives each code outside the spec codes a JSON-RPC code of its own', () => {
    const serverCodes = Object.entries(errorCodes)
      .filter(([code]) => !(code in specCodes))
      .map(([, { rpc }]) => rpc);
    assert.equal(new Set(serverCodes).size, serverCodes.length);
  });
});
