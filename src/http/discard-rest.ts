import type { FastifyRequest } from 'fastify';

/** How long a refused upload's remaining bytes are read and dropped before the connection is cut. */
const lingerMs = 10_000;

/**
 * Reads and drops what is left of a refused upload for a while, as a web server's lingering close
 * does: cutting the connection under a client still sending resets it, and the reset takes the
 * answer with it, so the client would see a broken pipe instead of why it was refused. Clients stop
 * sending once they read the answer; one that does not is cut after `lingerMs`.
 */
export function discardRest(raw: FastifyRequest['raw']): void {
  if (raw.complete) return;
  raw.unpipe();
  raw.resume();
  const timer = setTimeout(() => raw.socket.destroy(), lingerMs).unref();
  raw.once('end', () => clearTimeout(timer));
  raw.once('close', () => clearTimeout(timer));
}
