import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { consolidationFunctions } from '../../core/rrd.ts';
import { decodeBase64 } from '../../core/base64.ts';
import { badRequest } from '../../core/errors.ts';
import type { Services } from '../../services/index.ts';
import { seriesCsv } from '../../services/series/csv.ts';
import { defaultRawLimit, maxRawLimit, type SeriesValue } from '../../services/series/queries.ts';
import { actorOf } from '../access.ts';
import { authErrors, Nullable } from '../schemas.ts';

const SequencePath = Type.String({ minLength: 2, maxLength: 2000, pattern: '^/', description: 'Full path of the sequence: /<organization>/<folder>/.../<name>' });
const Time = Type.String({ minLength: 1, maxLength: 40, description: 'Milliseconds since the epoch, or an ISO-8601 time' });
const BodyTime = Type.Union([Type.Integer(), Type.String({ minLength: 1, maxLength: 40 })], { description: 'Milliseconds since the epoch, or an ISO-8601 time' });
const Format = Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('csv')], { description: 'csv answers text/csv (as does Accept: text/csv)' }));
const Value = Type.Union([Type.Number(), Type.String()], { description: 'Numbers and text as stored; images as base64' });
const Description = {
  path: Type.String(),
  dataType: Type.Union([Type.Literal('numeric'), Type.Literal('text'), Type.Literal('image')]),
  units: Nullable(Type.String()),
  decimalPlaces: Nullable(Type.Integer()),
};
const Point = Type.Object({ t: Type.Integer({ description: 'Milliseconds since the epoch' }), value: Value });
const Stored = Type.Object({ stored: Type.Boolean({ description: 'False when min_storage_interval kept the value out of the history (it still is the last value)' }) });
const ValueError = Type.Object({ error: Type.Object({ code: Type.String(), message: Type.String() }) });

/** A time given as milliseconds or ISO text. */
function parseTime(text: string | number | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = typeof text === 'number' ? text : /^-?\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(ms)) throw badRequest(`The ${what} is not a time: give milliseconds since the epoch or an ISO-8601 time`);
  return ms;
}

const wantsCsv = (request: FastifyRequest, format: string | undefined) =>
  format === 'csv' || (format === undefined && (request.headers.accept ?? '').split(',')[0]!.trim().startsWith('text/csv'));

const sendCsv = (reply: FastifyReply, points: Iterable<{ t: number; value: number | string | Buffer | null }>) => reply.type('text/csv; charset=utf-8').send(seriesCsv(points));

const toJson = ({ t, value }: SeriesValue) => ({ t, value: Buffer.isBuffer(value) ? value.toString('base64') : value });

export const seriesRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { series } = services;

  app.get(
    '/series/raw',
    {
      config: { access: { actions: ['resource.read'], anonymous: true } },
      schema: {
        tags: ['series'],
        summary: 'Stored values of a sequence in a time range (bounds inclusive)',
        querystring: Type.Object(
          {
            path: SequencePath,
            start: Type.Optional(Time),
            end: Type.Optional(Time),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: maxRawLimit, default: defaultRawLimit })),
            order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'asc' })),
            format: Format,
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ ...Description, values: Type.Array(Point) }), ...authErrors(400, 404) },
      },
    },
    async (request, reply) => {
      const { path, start, end, limit, order, format } = request.query;
      const raw = await series.raw(request.principal, path, { start: parseTime(start, 'start'), end: parseTime(end, 'end'), limit, order });
      if (wantsCsv(request, format)) return sendCsv(reply, raw.values);
      return { ...raw, values: raw.values.map(toJson) };
    },
  );

  app.get(
    '/series/consolidated',
    {
      config: { access: { actions: ['resource.read'], anonymous: true } },
      schema: {
        tags: ['series'],
        summary: "A numeric sequence's values consolidated by its round-robin archives: the finest covering the range, or the one closest to the resolution asked",
        querystring: Type.Object(
          {
            path: SequencePath,
            start: Time,
            end: Type.Optional(Type.String({ ...Time, description: 'Default now' })),
            cf: Type.Optional(Type.Union(consolidationFunctions.map((cf) => Type.Literal(cf)), { default: 'AVERAGE' })),
            resolution: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Seconds per point wanted' })),
            step: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'The same as resolution, as rrdtool fetch names it' })),
            format: Format,
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            ...Description,
            cf: Type.String(),
            resolution: Type.Number({ description: 'Seconds per point of the archive read' }),
            points: Type.Array(Type.Array(Nullable(Type.Number()), { minItems: 2, maxItems: 2 }), { description: '[end of the interval in ms, value or null when unknown]' }),
          }),
          ...authErrors(400, 404),
        },
      },
    },
    async (request, reply) => {
      const { path, start, end, cf, resolution, step, format } = request.query;
      if (resolution !== undefined && step !== undefined && resolution !== step) throw badRequest('Give resolution or step, not both');
      const result = await series.consolidated(request.principal, path, { start: parseTime(start, 'start')!, end: parseTime(end, 'end') ?? Date.now(), cf, resolution: resolution ?? step });
      if (wantsCsv(request, format)) return sendCsv(reply, result.points.map(([t, value]) => ({ t, value })));
      return result;
    },
  );

  app.get(
    '/series/last',
    {
      config: { access: { actions: ['resource.read'], anonymous: true } },
      schema: {
        tags: ['series'],
        summary: 'The newest value of a sequence (null before the first)',
        querystring: Type.Object({ path: SequencePath }, { additionalProperties: false }),
        response: { 200: Type.Object({ ...Description, last: Nullable(Point) }), ...authErrors(400, 404) },
      },
    },
    async (request) => {
      const result = await series.last(request.principal, request.query.path);
      return { ...result, last: result.last && toJson(result.last) };
    },
  );

  app.post(
    '/series/values',
    {
      config: { access: { actions: ['resource.write'] } },
      schema: {
        tags: ['series'],
        summary: 'Write one value to a sequence; answered once it is committed',
        body: Type.Object(
          {
            path: SequencePath,
            value: Value,
            t: Type.Optional(BodyTime),
            encoding: Type.Optional(Type.Literal('base64', { description: 'The value is base64 of binary content (image sequences)' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Stored, ...authErrors(400, 404) },
      },
    },
    async (request) => {
      const { path, value, t, encoding } = request.body;
      if (encoding === 'base64' && typeof value !== 'string') throw badRequest('A base64 value is text');
      const content = encoding === 'base64' ? decodeBase64(value as string) : value;
      return series.record(actorOf(request), path, content, parseTime(t, 'time'));
    },
  );

  app.post(
    '/series/bulk',
    {
      config: { access: { actions: ['resource.write'] } },
      schema: {
        tags: ['series'],
        summary: "Write values of many sequences at one time (a device's clock is corrected when it drifts); each path gets its own result",
        body: Type.Object(
          {
            timestamp: Type.Optional(BodyTime),
            values: Type.Record(Type.String({ pattern: '^/', maxLength: 2000 }), Value, { minProperties: 1, maxProperties: 10_000 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ results: Type.Record(Type.String(), Type.Union([Stored, ValueError])) }), ...authErrors(400) },
      },
      // The handler builds exactly the schema's shapes; fastify's serializer would test each result against both shapes of the union.
      serializerCompiler: () => (data) => JSON.stringify(data),
    },
    async (request) => {
      const results = await series.recordMany(actorOf(request), { values: request.body.values, timestamp: parseTime(request.body.timestamp, 'timestamp') });
      return {
        results: Object.fromEntries(Object.entries(results).map(([path, result]) => [path, 'error' in result ? { error: { code: result.error.code, message: result.error.message } } : result])),
      };
    },
  );
};
