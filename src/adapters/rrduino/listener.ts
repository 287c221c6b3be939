import { createServer, type AddressInfo } from 'node:net';
import type { Config } from '../../config/keys.ts';
import type { Logger } from '../../log.ts';
import type { SessionContext } from './context.ts';
import { RrduinoSession } from './session.ts';

export interface RrduinoListener {
  /** The port listened on (the configured one, or the one picked for port 0). */
  port: number;
  /** Stops accepting, closes every connection, and waits for the lines being stored. */
  close(): Promise<void>;
}

/**
 * The rrduino TCP line protocol (rrduino.md) on rrduinoHost:rrduinoPort. Every connection is a
 * session of its own: what one client sends, or fails to send, never holds up another.
 */
export async function startRrduino(options: {
  profiles: SessionContext['profiles'];
  series: SessionContext['series'];
  config: Pick<Config, 'rrduinoHost' | 'rrduinoPort' | 'rrduinoIdleTimeout'>;
  logger: Logger;
}): Promise<RrduinoListener> {
  const { config } = options;
  const context: SessionContext = { profiles: options.profiles, series: options.series, logger: options.logger };
  const sessions = new Set<RrduinoSession>();
  const server = createServer((socket) => {
    const session = new RrduinoSession(socket, context, config.rrduinoIdleTimeout * 1000);
    sessions.add(session);
    socket.once('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.rrduinoPort, config.rrduinoHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  options.logger.info({ host: config.rrduinoHost, port }, 'rrduino listener is serving');
  return {
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...sessions].map((session) => session.stop()));
      await closed;
    },
  };
}
