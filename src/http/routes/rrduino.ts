import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { badRequest } from '../../core/errors.ts';
import { clientIdPattern, fromProfileFile, maxKeyLength, type NewRrduinoProfile } from '../../services/rrduino-profiles.ts';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Nullable, Page, PageQuery, Timestamp } from '../schemas.ts';
import { OrgParams } from './organizations.ts';

const ClientId = Type.String({ pattern: clientIdPattern, description: 'What the client says in its hello (`h <client_id>`): letters, digits, _ . -' });
const Key = Type.String({ minLength: 1, maxLength: maxKeyLength, description: 'The pre-shared key (`key` of an rrduino profile); never returned' });
const RrdArguments = Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
  maxItems: 50,
  description: 'rrdtool create arguments: `--step N`, `DS:name:type:heartbeat:min:max`, `RRA:CF:xff:steps:rows`. Each DS is a sequence of the device folder; without RRAs the default archives apply; with no DS, each key of the lines becomes a sequence when it first arrives',
});
const UpdateTemplate = Type.String({ minLength: 1, maxLength: 1000, description: 'rrduino\'s update template, `N:{key1}:{key2}`: one reading per DS, in order; without one, each DS reads the key named as it' });
const Profile = Type.Object({
  clientId: Type.String(),
  orgId: Type.String(),
  deviceId: Type.String(),
  rrdArguments: Type.Array(Type.String()),
  updateTemplate: Nullable(Type.String()),
  sources: Type.Array(Type.String(), { description: 'The data sources: sequences of the device folder, named so' }),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
const ProfileParams = Type.Object({ ...OrgParams.properties, clientId: ClientId });

export const rrduinoRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { rrduinoProfiles } = services;

  app.get(
    '/orgs/:orgId/rrduino-profiles',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['rrduino'],
        summary: 'List the rrduino clients of the organization (admins)',
        params: OrgParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(Profile), ...authErrors(404) },
      },
    },
    async (request) => rrduinoProfiles.list(actorOf(request).principal, request.params.orgId, request.query),
  );

  app.post(
    '/orgs/:orgId/rrduino-profiles',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['rrduino'],
        summary: 'Add an rrduino client (admins), as `server.py -c NAME -k KEY` does',
        description:
          'Links the device given, else the only device of the organization named as the client, else a new device named so. ' +
          "rrduino's own profile file is taken as it is too: `{clientId, key, handler, handler_options: {path, create, update}}` (the path is ignored).",
        params: OrgParams,
        body: Type.Object(
          {
            clientId: ClientId,
            key: Key,
            deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            rrdArguments: Type.Optional(RrdArguments),
            updateTemplate: Type.Optional(Nullable(UpdateTemplate)),
            handler: Type.Optional(Type.String({ maxLength: 100 })),
            handler_options: Type.Optional(
              Type.Object({ path: Type.Optional(Type.String({ maxLength: 1000 })), create: Type.Optional(RrdArguments), update: Type.Optional(UpdateTemplate) }, { additionalProperties: false }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: Profile, ...authErrors(404, 409) },
      },
    },
    async (request, reply) => {
      const { handler, handler_options, ...own } = request.body;
      let input: NewRrduinoProfile = own;
      if (handler !== undefined || handler_options !== undefined) {
        if (own.rrdArguments !== undefined || own.updateTemplate !== undefined) throw badRequest('Give rrdArguments and updateTemplate, or an rrduino profile (handler, handler_options), not both');
        input = { ...fromProfileFile(own.clientId, { key: own.key, handler, handler_options }), deviceId: own.deviceId };
      }
      return reply.status(201).send(await rrduinoProfiles.create(actorOf(request), request.params.orgId, input));
    },
  );

  app.get(
    '/orgs/:orgId/rrduino-profiles/:clientId',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: { tags: ['rrduino'], summary: 'Get an rrduino client (admins)', params: ProfileParams, response: { 200: Profile, ...authErrors(404) } },
    },
    async (request) => rrduinoProfiles.get(actorOf(request).principal, request.params.orgId, request.params.clientId),
  );

  app.patch(
    '/orgs/:orgId/rrduino-profiles/:clientId',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['rrduino'],
        summary: 'Give an rrduino client a new key or new archives (admins)',
        description: "The client's connections end at their next line; it says hello again with the profile as it is now. Only sequences whose archives change lose their archived rows.",
        params: ProfileParams,
        body: Type.Object({ key: Type.Optional(Key), rrdArguments: Type.Optional(RrdArguments), updateTemplate: Type.Optional(Nullable(UpdateTemplate)) }, { additionalProperties: false, minProperties: 1 }),
        response: { 200: Profile, ...authErrors(404) },
      },
    },
    async (request) => rrduinoProfiles.update(actorOf(request), request.params.orgId, request.params.clientId, request.body),
  );

  app.delete(
    '/orgs/:orgId/rrduino-profiles/:clientId',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['rrduino'],
        summary: 'Remove an rrduino client (admins); its device and values stay',
        params: ProfileParams,
        response: { 204: Type.Null(), ...authErrors(404) },
      },
    },
    async (request, reply) => {
      await rrduinoProfiles.delete(actorOf(request), request.params.orgId, request.params.clientId);
      return reply.status(204).send(null);
    },
  );
};
