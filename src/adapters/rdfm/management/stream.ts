import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { authorize } from '../../../core/access.ts';
import type { HubEvent } from '../../../hub/events.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { managementOf } from './context.ts';

/** A comment line this often keeps proxies from closing a quiet stream. */
const keepAliveMs = 15_000;
/** Bytes a slow client may leave unread; past this the stream ends (the client reconnects, as EventSource does). */
const maxUnreadBytes = 1024 * 1024;
/** Devices whose MAC a stream remembers; past this it starts over (a large fleet is read again in part). */
const maxMacs = 10_000;

/** One event of RDFM's SSE stream (antmicro/rdfm:server/src/api/v1/ws/device.py publishes them). */
type RdfmStreamEvent = { event: 'connect' | 'disconnect'; data: { device: string } } | { event: 'update'; data: { device: string; progress: number; version: string | null } };

/** RDFM's event for a hub event, by the device's MAC; none for what RDFM does not stream. */
function rdfmEvent(event: HubEvent, mac: string): RdfmStreamEvent | undefined {
  if (event.name === 'device.online') return { event: 'connect', data: { device: mac } };
  if (event.name === 'device.offline') return { event: 'disconnect', data: { device: mac } };
  const { progress, version } = event.data;
  if (event.name === 'device.update' && typeof progress === 'number') return { event: 'update', data: { device: mac, progress, version: typeof version === 'string' ? version : null } };
  return undefined;
}

const streamed = new Set<HubEvent['name']>(['device.online', 'device.offline', 'device.update']);

/**
 * RDFM's SSE stream `GET /api/stream` (its web frontend's live view): `connect` and `disconnect`
 * `{"device": mac}` and `update` `{"device", "progress", "version"}` for the organization's devices
 * with a MAC, from fleetd's hub events of every node (device.online, device.offline, device.update),
 * from the moment the stream opens (no replay: `Last-Event-ID` is ignored, as RDFM ignores it).
 * Viewers and up. A comment line every 15 s keeps it open; a client that reads too slowly is cut.
 */
export async function streamRoutes(app: FastifyInstance, options: RdfmRouteOptions): Promise<void> {
  const { services, events } = options;
  /** Streams open now: ended when the server closes, which would otherwise wait for them. */
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.end();
  });

  app.get('/api/stream', { config: { access: { actions: ['device.read'] } } }, async (request, reply) => {
    const { actor, org } = await managementOf(request, options);
    authorize(actor.principal, 'device.read', { orgId: org.id });
    reply.hijack();
    const out = reply.raw;
    out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no', 'x-request-id': request.id });
    out.write(': connected\n\n');

    let open = true;
    const write = (text: string): void => {
      if (!open) return;
      out.write(text);
      if (out.writableLength > maxUnreadBytes) {
        request.log.info({ unread: out.writableLength }, 'RDFM event stream cut: the client reads too slowly');
        out.destroy();
      }
    };
    const macs = new Map<string, string | null>();
    const macOf = async (deviceId: string): Promise<string | null> => {
      let mac = macs.get(deviceId);
      if (mac === undefined) {
        const row = await services.store.db.selectFrom('devices').select('external_id').where('id', '=', deviceId).where('org_id', '=', org.id).executeTakeFirst();
        mac = row?.external_id ?? null;
        if (macs.size >= maxMacs) macs.clear();
        macs.set(deviceId, mac);
      }
      return mac;
    };
    // Events are written in the order they arrived, each after its device's MAC is known.
    let queue = Promise.resolve();
    const stopListening = events.listen((event) => {
      if (event.orgId !== org.id || event.deviceId === null || !streamed.has(event.name)) return;
      const deviceId = event.deviceId;
      queue = queue.then(async () => {
        try {
          const mac = await macOf(deviceId);
          const rdfm = mac === null ? undefined : rdfmEvent(event, mac);
          if (rdfm) write(`event: ${rdfm.event}\ndata: ${JSON.stringify(rdfm.data)}\n\n`);
        } catch (error) {
          request.log.warn({ err: error }, 'RDFM event stream could not name a device');
        }
      });
    });
    const keepAlive = setInterval(() => write(': keep-alive\n\n'), keepAliveMs);
    streams.add(out);
    out.once('close', () => {
      streams.delete(out);
      open = false;
      stopListening();
      clearInterval(keepAlive);
    });
  });
}
