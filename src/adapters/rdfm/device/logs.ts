import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { newId } from '../../../core/ids.ts';
import { callingDevice } from '../../../http/routes/device-self.ts';
import { nowIso } from '../../../store/page.ts';
import type { RdfmOptions } from '../plugin.ts';
import { parseRfc822 } from '../wire.ts';
import { bodyValidator } from '../validation.ts';
import { jsonBody } from './body.ts';

const LogBody = Type.Object({
  batch: Type.Array(
    Type.Object({
      device_timestamp: Type.String({ minLength: 1, maxLength: 64 }),
      name: Type.String({ minLength: 1, maxLength: 200 }),
      entry: Type.String({ maxLength: 64 * 1024 }),
    }),
    { maxItems: 1000 },
  ),
});
const validateLogs = bodyValidator<{ batch: Array<{ device_timestamp: string; name: string; entry: string }> }>(LogBody);

/** `POST /api/v1/logs`: a batch of the device's log entries, kept in device_logs with their RFC 822 time parsed. */
export async function deviceLogRoutes(app: FastifyInstance, { services }: RdfmOptions): Promise<void> {
  app.post('/api/v1/logs', { config: { access: { actions: ['device.report'] } } }, async (request) => {
    const device = callingDevice(request);
    const { batch } = validateLogs(jsonBody(request));
    const createdAt = nowIso();
    // Every timestamp is parsed before anything is stored: a malformed batch stores nothing.
    const rows = batch.map((log) => ({
      id: newId('log'),
      org_id: device.orgId,
      device_id: device.id,
      device_timestamp: log.device_timestamp,
      at: parseRfc822(log.device_timestamp, 'device_timestamp'),
      name: log.name,
      entry: log.entry,
      created_at: createdAt,
    }));
    if (rows.length > 0) await services.store.db.insertInto('device_logs').values(rows).execute();
    return {};
  });
}
