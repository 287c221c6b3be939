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

/**
 * How the HTTP server makes each request's logger (fastify's `childLoggerFactory`). A route with a
 * log level of its own (`logLevel`) would have pino set that level on every request's child, which
 * costs more than the rest of a small request: each level gets one child of the server's logger
 * instead, and requests take children of that one, which inherit its level.
 */
export function requestLoggers<L extends { child(bindings: pino.Bindings, options?: pino.ChildLoggerOptions): L }>(): (logger: L, bindings: pino.Bindings, options: pino.ChildLoggerOptions) => L {
  const leveled = new WeakMap<L, Map<string, L>>();
  return (logger, bindings, options) => {
    const { level, ...rest } = options;
    if (level === undefined) return logger.child(bindings, options);
    const byLevel = leveled.get(logger) ?? new Map<string, L>();
    leveled.set(logger, byLevel);
    let base = byLevel.get(level);
    if (base === undefined) {
      base = logger.child({}, { level });
      byLevel.set(level, base);
    }
    return base.child(bindings, rest);
  };
}
