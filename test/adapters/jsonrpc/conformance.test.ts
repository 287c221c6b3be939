import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Type } from 'typebox';
import { Dispatcher } from '../../../src/adapters/jsonrpc/dispatcher.ts';
import { createLogger } from '../../../src/log.ts';
import { decoded, subtractMethod } from './helpers.ts';

/**
 * Every example case of the JSON-RPC 2.0 specification (section 7 of the condensed rules in
 * shared/protocols/jsonrpc-2.0.md), answered exactly: the same JSON, the same single object or
 * array, and nothing at all where the spec sends nothing.
 */

const protocolDocument = '/work/shared/protocols/jsonrpc-2.0.md';

interface Case {
  n: number;
  /** The request as the document writes it: `"jsonrpc": "2.0"` left out for width. */
  request: string;
  /** The frame sent, when it is not `request` with `"jsonrpc": "2.0"` put into each object. */
  frame?: string;
  /** The reply as the document writes it (without `jsonrpc`); `undefined` when nothing comes back. */
  response: unknown;
  /** Batch replies may come in any order. */
  anyOrder?: boolean;
}

const invalidRequest = { error: { code: -32600, message: 'Invalid Request' }, id: null };

const cases: Case[] = [
  { n: 1, request: '{"method":"subtract","params":[42,23],"id":1}', response: { result: 19, id: 1 } },
  { n: 2, request: '{"method":"subtract","params":[23,42],"id":2}', response: { result: -19, id: 2 } },
  { n: 3, request: '{"method":"subtract","params":{"subtrahend":23,"minuend":42},"id":3}', response: { result: 19, id: 3 } },
  { n: 4, request: '{"method":"subtract","params":{"minuend":42,"subtrahend":23},"id":4}', response: { result: 19, id: 4 } },
  { n: 5, request: '{"method":"update","params":[1,2,3,4,5]}', response: undefined },
  { n: 6, request: '{"method":"foobar"}', response: undefined },
  { n: 7, request: '{"method":"foobar","id":"1"}', response: { error: { code: -32601, message: 'Method not found' }, id: '1' } },
  { n: 8, request: '{"jsonrpc":"2.0","method":"foobar, "params":"bar", "baz]', response: { error: { code: -32700, message: 'Parse error' }, id: null } },
  { n: 9, request: '{"method":1,"params":"bar"}', response: invalidRequest },
  { n: 10, request: '[{"method":"sum","params":[1,2,4],"id":"1"},{"jsonrpc":"2.0","method"]', response: { error: { code: -32700, message: 'Parse error' }, id: null } },
  { n: 11, request: '[]', response: invalidRequest },
  { n: 12, request: '[1]', response: [invalidRequest] },
  { n: 13, request: '[1,2,3]', response: [invalidRequest, invalidRequest, invalidRequest] },
  {
    n: 14,
    request: 'batch (below)',
    // The specification's own text of this batch: its invalid element carries no `jsonrpc` member.
    frame: `[
      {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
      {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
      {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
      {"foo": "boo"},
      {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
      {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]`,
    response: [
      { result: 7, id: '1' },
      { result: 19, id: '2' },
      invalidRequest,
      { error: { code: -32601, message: 'Method not found' }, id: '5' },
      { result: ['hello', 5], id: '9' },
    ],
    anyOrder: true,
  },
  { n: 15, request: '[{"method":"notify_sum","params":[1,2,4]},{"method":"notify_hello","params":[7]}]', response: undefined },
];

/** The example methods of the specification, and what the notifications among them were given. */
function exampleDispatcher() {
  const notified: [string, unknown][] = [];
  const dispatcher = new Dispatcher({ logger: createLogger('silent') })
    .register(subtractMethod)
    .register({ name: 'sum', params: Type.Array(Type.Number()), access: 'public', handler: (terms) => terms.reduce((total, term) => total + term, 0) })
    .register({ name: 'get_data', params: Type.Object({}, { additionalProperties: false }), access: 'public', handler: () => ['hello', 5] });
  for (const name of ['update', 'notify_hello', 'notify_sum']) {
    dispatcher.register({ name, params: Type.Array(Type.Unknown()), access: 'public', handler: (params) => void notified.push([name, params]) });
  }
  return { dispatcher, notified };
}

const withVersion = (value: unknown): unknown => (typeof value === 'object' && value !== null && !Array.isArray(value) ? { jsonrpc: '2.0', ...value } : value);

/** The frame a case sends: broken JSON as it is, otherwise each object with `"jsonrpc": "2.0"`. */
function frameOf(c: Case): string {
  if (c.frame !== undefined) return c.frame;
  let value: unknown;
  try {
    value = JSON.parse(c.request);
  } catch {
    return c.request;
  }
  return JSON.stringify(Array.isArray(value) ? value.map(withVersion) : withVersion(value));
}

const expectedReply = (response: unknown) => (Array.isArray(response) ? response.map(withVersion) : withVersion(response));

/** Key order does not matter to JSON; for batches answered in any order, neither does element order. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v));
const sorted = (values: unknown[]) => [...values].sort((a, b) => canonical(a).localeCompare(canonical(b)));

describe('JSON-RPC 2.0 specification examples', () => {
  for (const c of cases) {
    it(`case ${c.n}: ${c.request.slice(0, 70)}`, async () => {
      const { dispatcher } = exampleDispatcher();
      const reply = decoded(await dispatcher.handleText(frameOf(c), {}));
      if (c.response === undefined) {
        assert.equal(reply, undefined, 'nothing is sent back');
        return;
      }
      const expected = expectedReply(c.response);
      assert.equal(Array.isArray(reply), Array.isArray(expected), Array.isArray(expected) ? 'an array' : 'a single object');
      if (c.anyOrder && Array.isArray(reply) && Array.isArray(expected)) assert.deepStrictEqual(sorted(reply), sorted(expected));
      else assert.deepStrictEqual(reply, expected);
    });
  }

  it('runs the notifications it does not answer', async () => {
    const { dispatcher, notified } = exampleDispatcher();
    for (const n of [5, 14, 15]) await dispatcher.handleText(frameOf(cases.find((c) => c.n === n)!), {});
    assert.deepStrictEqual(notified, [
      ['update', [1, 2, 3, 4, 5]],
      ['notify_hello', [7]],
      ['notify_sum', [1, 2, 4]],
      ['notify_hello', [7]],
    ]);
  });

  describe('the transcription above', { skip: !existsSync(protocolDocument) && `${protocolDocument} is not here to compare with` }, () => {
    const text = existsSync(protocolDocument) ? readFileSync(protocolDocument, 'utf8') : '';
    const section = text.slice(text.indexOf('## 7.'), text.indexOf('## 8.'));
    const rows = [...section.matchAll(/^\| (\d+) \| (.*) \| (.*) \|$/gm)].map(([, n, request, response]) => ({ n: Number(n), request: request!, response: response! }));
    const spans = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map(([, span]) => span!);
    const json = (span: string): { value: unknown } | undefined => {
      try {
        return { value: JSON.parse(span) };
      } catch {
        return undefined;
      }
    };

    it('holds every example case of the document', () => {
      assert.ok(rows.length > 0, 'the document has its table of cases');
      assert.deepStrictEqual(
        cases.map((c) => c.n),
        rows.map((row) => row.n),
      );
    });

    it('copies each request and each response the document writes out', () => {
      for (const row of rows) {
        const c = cases.find((candidate) => candidate.n === row.n)!;
        const [request] = spans(row.request);
        assert.equal(c.request, request ?? row.request, `case ${row.n} request`);
        if (row.response.startsWith('(none)')) {
          assert.equal(c.response, undefined, `case ${row.n}: no response`);
          continue;
        }
        const written = spans(row.response).map(json).find((parsed) => parsed !== undefined);
        if (written) assert.deepStrictEqual(c.response, written.value, `case ${row.n} response`);
      }
    });

    it('copies the expected answer to the batch of case 14', () => {
      const listing = section.slice(section.indexOf('Expected array'), section.indexOf('No entry for the notification'));
      const expected = spans(listing).map((span) => json(span)?.value);
      assert.equal(expected.length, 5);
      assert.deepStrictEqual(sorted(cases.find((c) => c.n === 14)!.response as unknown[]), sorted(expected));
    });
  });
});
