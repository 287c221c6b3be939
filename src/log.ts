import { pino, type Logger } from 'pino';

export type { Logger };

/** The one logger: JSON lines on stdout, secrets redacted wherever they appear in a logged request. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      name: 'fleetd',
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-csrf-token"]', 'res.headers["set-cookie"]', '*.password', '*.refreshToken', '*.key'],
        censor: '***',
      },
    },
    destination as never,
  );
}
