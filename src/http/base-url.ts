import type { IncomingMessage } from 'node:http';
import type { Config } from '../config/keys.ts';

/**
 * The URL devices reach this server at, for links fleetd hands out (package downloads, shell and
 * upload addresses): `publicUrl` when set, else what the request itself was sent to. The Host
 * header is the client's word; a proxy's X-Forwarded-Proto counts only with `trustProxy`.
 */
export function baseUrlOf(request: Pick<IncomingMessage, 'headers' | 'socket'>, config: Pick<Config, 'publicUrl' | 'trustProxy' | 'port'>): string {
  if (config.publicUrl) return config.publicUrl;
  const forwarded = config.trustProxy ? firstValue(request.headers['x-forwarded-proto']) : undefined;
  const encrypted = (request.socket as { encrypted?: boolean }).encrypted === true;
  const scheme = forwarded === 'https' || forwarded === 'http' ? forwarded : encrypted ? 'https' : 'http';
  const host = firstValue(config.trustProxy ? (request.headers['x-forwarded-host'] ?? request.headers.host) : request.headers.host);
  return `${scheme}://${host && /^[A-Za-z0-9.:[\]-]{1,300}$/.test(host) ? host : `localhost:${config.port}`}`;
}

const firstValue = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value)?.split(',')[0]?.trim();
