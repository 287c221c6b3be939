import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { clientDispatcher, clientPrincipal, type ClientContext } from '../../adapters/client/dispatcher.ts';
import { webSocketOnlyMessage, webSocketOnlyMethods } from '../../adapters/client/subscriptions.ts';
import type { Dispatcher } from '../../adapters/jsonrpc/dispatcher.ts';
import { errorObject, errorResponse, protocolErrors, type Response } from '../../adapters/jsonrpc/messages.ts';
import type { Message } from '../../adapters/jsonrpc/parse.ts';
import { FleetError } from '../../core/errors.ts';
import type { Hub } from '../../hub/hub.ts';
import { authErrors } from '../schemas.ts';

const JsonRpcRequest = Type.Object(
  { jsonrpc: Type.Literal('2.0'), method: Type.String(), params: Type.Optional(Type.Unknown()), id: Type.Optional(Type.Union([Type.String(), Type.Number(), Type.Null()])) },
  { description: 'A JSON-RPC 2.0 request, or a notification (no id)' },
);
const JsonRpcResponse = Type.Object(
  {
    jsonrpc: Type.Literal('2.0'),
    result: Type.Optional(Type.Unknown()),
    error: Type.Optional(Type.Object({ code: Type.Integer(), message: Type.String(), data: Type.Optional(Type.Unknown()) })),
    id: Type.Union([Type.String(), Type.Number(), Type.Null()]),
  },
  { description: 'A JSON-RPC 2.0 response: result or error' },
);

const webSocketOnly = errorObject(protocolErrors.invalidRequest.code, webSocketOnlyMessage);

/**
 * JSON-RPC 2.0 over HTTP, the methods of /api/ws but subscriptions: one request, notification or
 * batch per POST, answered by the spec (HTTP 200 even for a Parse error, 204 when nothing is answered).
 */
export const rpcRoutes: FastifyPluginAsync<{ hub: Hub }> = async (app, { hub }) => {
  const dispatcher = clientDispatcher(hub);

  // The body reaches the dispatcher as text: text that is not JSON is a JSON-RPC Parse error, not an HTTP 400.
  // Other content types are refused with 415; this applies to this plugin's routes only.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: hub.config.bodyLimit }, (_request, body, done) => done(null, body));

  app.post(
    '/rpc',
    {
      // Who is calling is checked here; what each method may do, by the dispatcher.
      config: { access: { actions: [] } },
      schema: {
        tags: ['rpc'],
        summary: 'JSON-RPC 2.0: a request, a notification or a batch (Device.List, Device.Call, …); Subscribe only over /api/ws',
        body: Type.Union([JsonRpcRequest, Type.Array(JsonRpcRequest)]),
        response: { 200: Type.Union([JsonRpcResponse, Type.Array(JsonRpcResponse)]), 204: Type.Null(), ...authErrors(413, 415) },
      },
      // The body schema is for the document: the dispatcher reads the text and answers what is wrong with it.
      validatorCompiler: () => () => true,
    },
    async (request, reply) => {
      if (typeof request.body !== 'string') throw new FleetError('unsupported_media_type', 'Send the JSON-RPC request as Content-Type: application/json');
      const context: ClientContext = { principal: clientPrincipal(request.principal), ip: request.ip, requestId: request.id };
      const answer = await answerOverHttp(dispatcher, request.body, context);
      if (answer === undefined) return reply.status(204).send();
      return reply.status(200).type('application/json').send(dispatcher.encode(answer));
    },
  );
};

/** The dispatcher's answer, but subscriptions, which need a connection to send events on. */
async function answerOverHttp(dispatcher: Dispatcher<ClientContext>, text: string, context: ClientContext): Promise<Response | Response[] | undefined> {
  const frame = dispatcher.parse(text);
  if (frame.kind === 'refused') return dispatcher.handleFrame(frame, context);
  const messages = frame.kind === 'single' ? [frame.message] : frame.messages;
  const refusals = messages.filter(needsWebSocket).flatMap((message) => (message.kind === 'request' ? [errorResponse(message.id, webSocketOnly)] : []));
  if (refusals.length === 0) return dispatcher.handleFrame(frame, context);
  if (frame.kind === 'single') return refusals[0];
  // Responses of a batch may come in any order: the client matches them by id.
  const rest = messages.filter((message) => !needsWebSocket(message));
  const answered = rest.length > 0 ? await dispatcher.handleFrame({ kind: 'batch', messages: rest }, context) : undefined;
  return [...[answered ?? []].flat(), ...refusals];
}

const needsWebSocket = (message: Message): boolean => (message.kind === 'request' || message.kind === 'notification') && webSocketOnlyMethods.has(message.method);
