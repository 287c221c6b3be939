import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest } from '../../../core/errors.ts';

/** The bytes of each request body as they arrived: RDFM's device signature covers them. */
const rawBodies = new WeakMap<FastifyRequest, Buffer>();

/**
 * Takes every body as bytes, whatever its content type: RDFM checks the signature over the raw body
 * before it parses anything, and answers a body that is not JSON with 400 rather than 415.
 */
export function keepRawBody(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (request, body, done) => {
    rawBodies.set(request, body as Buffer);
    done(null, undefined);
  });
}

export const rawBody = (request: FastifyRequest): Buffer => rawBodies.get(request) ?? Buffer.alloc(0);

/** The body as JSON; 400 when it is not. */
export function jsonBody(request: FastifyRequest): unknown {
  try {
    return JSON.parse(rawBody(request).toString('utf8')) as unknown;
  } catch {
    throw badRequest('request body is not valid JSON');
  }
}
