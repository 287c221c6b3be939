import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { decodeBase64 } from '../../core/base64.ts';
import { FleetError } from '../../core/errors.ts';
import { maxNameLength } from '../../core/resource-paths.ts';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Nullable, Page, PageQuery, Timestamp } from '../schemas.ts';

const PathParams = Type.Object({
  '*': Type.String({ minLength: 1, maxLength: 2000, description: 'The full path without its leading slash: <organization>/<folder>/.../<name>' }),
});
const fullPath = (params: { '*': string }) => `/${params['*']}`;

const ResourceTypeSchema = Type.Union(
  [
    Type.Literal('basic_folder'),
    Type.Literal('organization_folder'),
    Type.Literal('controller_folder'),
    Type.Literal('remote_folder'),
    Type.Literal('file'),
    Type.Literal('sequence'),
    Type.Literal('app'),
  ],
  { description: 'rhizo resource types: folders (basic, organization, controller = a device, remote), file, sequence, app' },
);
const PermissionEntry = Type.Tuple(
  [
    Type.Union([Type.Literal(100), Type.Literal(110), Type.Literal(120), Type.Literal(130), Type.Literal(140)]),
    Nullable(Type.String({ minLength: 1, maxLength: 100 })),
    Type.Union([Type.Literal(0), Type.Literal(10), Type.Literal(20)]),
  ],
  {
    description:
      '[access type, principal id, level]: 100 anyone (id null), 110 users of the organization id, 120 devices of the organization id, 130 one user id, 140 one device id; level 0 none, 10 read, 20 write',
  },
);
const Permissions = Type.Array(PermissionEntry, { maxItems: 100 });
/** The same in answers, plainer: the serializer cannot match unions inside a tuple. */
const StoredPermissions = Type.Array(Type.Array(Type.Unknown(), { minItems: 3, maxItems: 3, description: '[access type, principal id, level]' }));
const Attributes = Type.Record(Type.String(), Type.Unknown(), { description: 'Free JSON object' });
const ResourceName = Type.String({ minLength: 1, maxLength: maxNameLength, description: 'No /, \\ or control characters; not . or ..' });

const Resource = Type.Object({
  id: Type.String(),
  orgId: Type.String(),
  parentId: Nullable(Type.String()),
  name: Type.String(),
  path: Type.String({ description: 'Full path: /<organization>/a/b' }),
  relativePath: Type.String({ description: "Below the organization: /a/b, '' for its folder" }),
  type: ResourceTypeSchema,
  deviceId: Nullable(Type.String()),
  systemAttributes: Attributes,
  userAttributes: Attributes,
  permissions: Type.Union([StoredPermissions, Type.Null()], { description: "The resource's own entries; null inherits its parent's" }),
  lastRevisionId: Nullable(Type.String()),
  createdAt: Timestamp,
  modifiedAt: Timestamp,
});
const Revision = Type.Object({
  id: Type.String(),
  resourceId: Type.String(),
  size: Type.Integer(),
  sha256: Type.String(),
  storage: Type.Union([Type.Literal('database'), Type.Literal('blob')]),
  createdBy: Nullable(Type.String()),
  createdAt: Timestamp,
});
const SequenceSettings = Type.Object(
  {
    dataType: Type.Union([Type.Literal('numeric'), Type.Literal('text'), Type.Literal('image')]),
    units: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
    decimalPlaces: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 15 }))),
    maxHistory: Type.Optional(Nullable(Type.Integer({ minimum: 1, description: 'Most values kept' }))),
    minStorageInterval: Type.Optional(Type.Number({ minimum: 0, description: 'Seconds between stored values' })),
    maxAge: Type.Optional(Nullable(Type.Integer({ minimum: 1, description: 'Seconds values are kept' }))),
    rrd: Type.Optional(Type.Array(Type.String({ maxLength: 500 }), { maxItems: 50, description: 'rrdtool create arguments (--step, DS:, RRA:); default: the nearest folder with system attribute rrd' })),
  },
  { additionalProperties: false },
);

/** Sent as it is (a Buffer is never serialized); declared for the document. */
const FileContent = Type.Unsafe<Buffer>({ type: 'string', format: 'binary', description: 'view=content: the bytes, application/octet-stream' });

const GetQuery = Type.Object(
  {
    view: Type.Optional(
      Type.Union([Type.Literal('meta'), Type.Literal('children'), Type.Literal('content'), Type.Literal('revisions')], {
        default: 'meta',
        description: "meta: the resource; children: a folder's children (or subtree); content: a file's bytes; revisions: a file's revisions",
      }),
    ),
    recursive: Type.Optional(Type.Boolean({ description: 'children: the whole subtree' })),
    type: Type.Optional(ResourceTypeSchema),
    filter: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'children: names matching, * for any text' })),
    revision: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'content: this revision instead of the newest' })),
    ...PageQuery,
  },
  { additionalProperties: false },
);

/**
 * Each organization's resource tree, addressed by full path. Reads of public resources need no
 * credentials; everything else is decided by the resource's inherited permissions.
 */
export const resourceRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { resources } = services;

  // File content arrives as it is (within the body limit); JSON stays the API's other body type.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.get(
    '/resources/*',
    {
      config: { access: { actions: ['resource.read'], anonymous: true } },
      schema: {
        tags: ['resources'],
        summary: 'Read a resource, list a folder, or read a file',
        description: 'Without credentials, only public resources (entry 100) are found.',
        params: PathParams,
        querystring: GetQuery,
        response: { 200: Type.Union([Resource, Page(Resource), Page(Revision), FileContent]), ...authErrors(404) },
      },
    },
    async (request, reply) => {
      const path = fullPath(request.params);
      const { view = 'meta', recursive, type, filter, revision, limit, cursor } = request.query;
      const p = request.principal;
      switch (view) {
        case 'meta':
          return resources.resolve(p, path);
        case 'children':
          return resources.list(p, path, { recursive, type, filter, limit, cursor });
        case 'revisions':
          return resources.revisions(p, path, { limit, cursor });
        case 'content': {
          const file = await resources.readFile(p, path, revision);
          return reply.type('application/octet-stream').header('etag', `"${file.revision.sha256}"`).send(file.content);
        }
      }
    },
  );

  app.post(
    '/resources/*',
    {
      config: { access: { actions: ['resource.write'] } },
      schema: {
        tags: ['resources'],
        summary: 'Create a resource in the folder at the path',
        description:
          'Permissions may be set by organization admins only. A controller folder makes a device too (admins). A sequence needs its settings; a file may come with its first content.',
        params: PathParams,
        body: Type.Object(
          {
            name: ResourceName,
            type: ResourceTypeSchema,
            systemAttributes: Type.Optional(Attributes),
            userAttributes: Type.Optional(Attributes),
            permissions: Type.Optional(Permissions),
            createParents: Type.Optional(Type.Boolean({ description: 'Make missing folders on the way' })),
            content: Type.Optional(Type.String({ contentEncoding: 'base64', description: "A file's first content, base64" })),
            sequence: Type.Optional(SequenceSettings),
          },
          { additionalProperties: false },
        ),
        response: { 201: Resource, ...authErrors(404, 409) },
      },
    },
    async (request, reply) => {
      const { content, ...input } = request.body;
      const created = await resources.create(actorOf(request), fullPath(request.params), { ...input, ...(content !== undefined && { content: decodeBase64(content) }) });
      return reply.status(201).send(created);
    },
  );

  app.patch(
    '/resources/*',
    {
      config: { access: { actions: ['resource.write'] } },
      schema: {
        tags: ['resources'],
        summary: 'Rename, move, or change the attributes or permissions of a resource',
        description: 'Its subtree follows a rename or move. systemAttributes are merged key by key (null removes a key), so that what fleetd keeps there stays; userAttributes given replace the old ones. Permissions may be changed by organization admins only.',
        params: PathParams,
        body: Type.Object(
          {
            name: Type.Optional(ResourceName),
            parentPath: Type.Optional(Type.String({ minLength: 2, maxLength: 2000, pattern: '^/', description: 'Full path of the folder to move into' })),
            systemAttributes: Type.Optional(Attributes),
            userAttributes: Type.Optional(Attributes),
            permissions: Type.Optional(Type.Union([Permissions, Type.Null()], { description: "null inherits the parent's again" })),
            sequence: Type.Optional(Type.Partial(Type.Omit(SequenceSettings, ['dataType']), { description: "A sequence's settings (its data type stays); new rrd arguments start its archives afresh" })),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: Resource, ...authErrors(404, 409) },
      },
    },
    async (request) => resources.update(actorOf(request), fullPath(request.params), request.body),
  );

  app.put(
    '/resources/*',
    {
      config: { access: { actions: ['resource.write'] } },
      schema: {
        tags: ['resources'],
        summary: "Store a file's new content (application/octet-stream) as its newest revision",
        consumes: ['application/octet-stream'],
        params: PathParams,
        response: { 200: Revision, ...authErrors(404, 413, 415) },
      },
    },
    async (request) => {
      if (!Buffer.isBuffer(request.body)) throw new FleetError('unsupported_media_type', 'Send the content as application/octet-stream');
      return resources.writeFile(actorOf(request), fullPath(request.params), request.body);
    },
  );

  app.delete(
    '/resources/*',
    {
      config: { access: { actions: ['resource.write'] } },
      schema: { tags: ['resources'], summary: 'Delete a resource and its subtree (soft: the name is free again)', params: PathParams, response: { 204: Type.Null(), ...authErrors(404) } },
    },
    async (request, reply) => {
      await resources.delete(actorOf(request), fullPath(request.params));
      return reply.status(204).send(null);
    },
  );
};
