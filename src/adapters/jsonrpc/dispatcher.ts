import { authorize, type AccessDeclaration } from '../../core/access.ts';
import { FleetError, unauthenticated } from '../../core/errors.ts';
import type { Logger } from '../../log.ts';
import { mapBounded } from './bounded.ts';
import { errorObjectOf, errorResponse, protocolErrors, successResponse, type ErrorObject, type ErrorResponse, type Response, type SuccessResponse } from './messages.ts';
import { compileMethod, type CallContext, type MethodDefinition, type ParamsSchema, type RegisteredMethod } from './methods.ts';
import { parseFrame, type Frame, type MalformedResponse, type Message, type NotificationMessage, type RequestMessage, type ResponseMessage } from './parse.ts';

export interface DispatcherOptions<C extends CallContext> {
  logger: Logger;
  /** Longer batches are refused whole with an Invalid Request saying the limit. Default 100. */
  maxBatchSize?: number;
  /** How many messages of one batch run at once. Default 8. */
  batchConcurrency?: number;
  /** Off for dialects that leave out `"jsonrpc": "2.0"` (Shelly devices). Default on. */
  requireVersion?: boolean;
  /**
   * Where responses to the calls fleetd makes go (the socket's OutgoingCalls). Without it nobody
   * is waiting for responses, and one that arrives is an invalid request like any other.
   */
  onResponse?: (message: ResponseMessage | MalformedResponse, context: C) => void;
}

type Outcome = { result: unknown } | { error: ErrorObject };

/**
 * The methods one endpoint offers, and the JSON-RPC 2.0 server algorithm over them: one text in,
 * at most one text out, the same for every transport. `C` is what the transport attaches to a call.
 */
export class Dispatcher<C extends CallContext = CallContext> {
  private readonly methods = new Map<string, RegisteredMethod<C>>();
  private readonly logger: Logger;
  private readonly maxBatchSize: number;
  private readonly batchConcurrency: number;
  private readonly requireVersion: boolean;
  private readonly onResponse?: DispatcherOptions<C>['onResponse'];

  constructor(options: DispatcherOptions<C>) {
    this.logger = options.logger;
    this.maxBatchSize = options.maxBatchSize ?? 100;
    this.batchConcurrency = options.batchConcurrency ?? 8;
    this.requireVersion = options.requireVersion ?? true;
    this.onResponse = options.onResponse;
  }

  register<S extends ParamsSchema, A extends AccessDeclaration>(definition: MethodDefinition<S, A, C>): this {
    if (this.methods.has(definition.name)) throw new Error(`Method ${definition.name} is registered twice`);
    this.methods.set(definition.name, compileMethod(definition));
    return this;
  }

  /** One incoming text frame, and the text to send back, if any. */
  async handleText(text: string, context: C): Promise<string | undefined> {
    const reply = await this.handleFrame(this.parse(text), context);
    return reply === undefined ? undefined : this.encode(reply);
  }

  parse(text: string): Frame {
    return parseFrame(text, { maxBatchSize: this.maxBatchSize, requireVersion: this.requireVersion });
  }

  /** The reply to a frame as objects, for transports that add members of their own before encoding. */
  async handleFrame(frame: Frame, context: C): Promise<Response | Response[] | undefined> {
    switch (frame.kind) {
      case 'refused':
        this.logger.debug({ reason: frame.reason }, 'JSON-RPC frame refused');
        return errorResponse(null, frame.error);
      case 'single':
        return this.answer(frame.message, context);
      case 'batch': {
        const replies = await mapBounded(frame.messages, this.batchConcurrency, (message) => this.answer(message, context));
        const responses = replies.filter((reply) => reply !== undefined);
        // A batch of notifications (or of responses) is answered with nothing at all, never `[]`.
        return responses.length > 0 ? responses : undefined;
      }
    }
  }

  /** The response to one message; notifications and responses get none. Never rejects. */
  async answer(message: Message, context: C): Promise<Response | undefined> {
    switch (message.kind) {
      case 'request': {
        const outcome = await this.run(message, context);
        return 'error' in outcome ? errorResponse(message.id, outcome.error) : successResponse(message.id, outcome.result);
      }
      case 'notification':
        await this.run(message, context);
        return undefined;
      case 'response':
      case 'malformed_response':
        if (this.onResponse) {
          this.deliverResponse(message, context);
          return undefined;
        }
        this.logger.debug({ id: message.id }, 'JSON-RPC response where none is expected');
        return errorResponse(message.id, protocolErrors.invalidRequest);
      case 'invalid':
        this.logger.debug({ id: message.id, reason: message.reason }, 'invalid JSON-RPC request');
        return errorResponse(message.id, protocolErrors.invalidRequest);
    }
  }

  /**
   * JSON text of a reply. A result JSON cannot hold (a BigInt, a cycle) becomes an Internal error
   * for that response alone, not for the rest of its batch.
   */
  encode(reply: Response | Response[]): string {
    return Array.isArray(reply) ? `[${reply.map((response) => this.encodeOne(response)).join(',')}]` : this.encodeOne(reply);
  }

  private encodeOne(response: Response): string {
    try {
      return JSON.stringify(response);
    } catch (error) {
      this.logger.error({ err: error, id: response.id }, 'JSON-RPC response cannot be written as JSON');
      const { result: _result, error: _error, ...members } = response as SuccessResponse & ErrorResponse;
      return JSON.stringify({ ...members, error: internalError() });
    }
  }

  private async run(message: RequestMessage | NotificationMessage, context: C): Promise<Outcome> {
    const method = this.methods.get(message.method);
    if (!method) {
      this.logger.debug({ method: abbreviate(message.method) }, 'JSON-RPC method not found');
      return { error: protocolErrors.methodNotFound };
    }
    try {
      const { access } = method;
      if (access === 'public') return { result: await method.handler(method.readParams(message.params), context) };
      // Who is calling is settled before the params are looked at, so that strangers learn nothing of them.
      const principal = context.principal;
      if (!principal) throw unauthenticated();
      const params = method.readParams(message.params);
      const resource = await method.resource(params, context);
      for (const action of access.actions) authorize(principal, action, resource);
      return { result: await method.handler(params, context) };
    } catch (error) {
      return { error: this.errorOf(error, method.name) };
    }
  }

  private errorOf(error: unknown, method: string): ErrorObject {
    if (error instanceof FleetError) {
      if (error.code === 'internal') this.logger.error({ err: error, method }, 'JSON-RPC method failed');
      else this.logger.debug({ code: error.code, message: error.message, method }, 'JSON-RPC call refused');
      return errorObjectOf(error);
    }
    // Whatever else went wrong is the server's business: logged here, never told to the caller.
    this.logger.error({ err: error, method }, 'JSON-RPC method failed');
    return internalError();
  }

  private deliverResponse(message: ResponseMessage | MalformedResponse, context: C): void {
    try {
      this.onResponse?.(message, context);
    } catch (error) {
      this.logger.error({ err: error, id: message.id }, 'JSON-RPC response could not be delivered');
    }
  }
}

const internalError = () => errorObjectOf(new FleetError('internal', 'Internal error'));

/** Method names come from the caller and may be of any length; logs get their start. */
const abbreviate = (name: string) => (name.length > 100 ? `${name.slice(0, 100)}…` : name);
