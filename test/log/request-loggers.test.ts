import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestLoggers } from '../../src/log.ts';
import { recordingLogger } from '../helpers/logger.ts';

describe('requestLoggers', () => {
  it('gives a request of a route with its own level a logger at that level, bound to the request', () => {
    const { logger, entries } = recordingLogger('info');
    const childOf = requestLoggers<typeof logger>();
    const quiet = childOf(logger, { reqId: 'r1' }, { level: 'warn' });
    quiet.info('not written');
    quiet.warn('written');
    const loud = childOf(logger, { reqId: 'r2' }, {});
    loud.info('written too');
    assert.deepEqual(
      entries.map((e) => [e.reqId, e.msg]),
      [
        ['r1', 'written'],
        ['r2', 'written too'],
      ],
    );
  });

  it('makes one leveled parent per level and server logger, and leaves the server logger at its own level', () => {
    const { logger, entries } = recordingLogger('info');
    const childOf = requestLoggers<typeof logger>();
    const debug = [childOf(logger, { reqId: 'a' }, { level: 'debug' }), childOf(logger, { reqId: 'b' }, { level: 'debug' })];
    for (const child of debug) child.debug('detail');
    logger.debug('not written');
    assert.deepEqual(
      entries.map((e) => e.reqId),
      ['a', 'b'],
    );
    assert.equal(logger.level, 'info');
  });
});
