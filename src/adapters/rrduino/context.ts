import type { Logger } from '../../log.ts';
import type { RrduinoClient, RrduinoProfiles } from '../../services/rrduino-profiles.ts';
import type { FleetError } from '../../core/errors.ts';
import type { SessionKey } from './session-key.ts';

/** What every session of the listener shares. */
export interface SessionContext {
  profiles: Pick<RrduinoProfiles, 'client' | 'isCurrent' | 'sequenceId'>;
  /** The time series' ingest: resolves once the values are committed. */
  series: { ingest(values: Array<{ sequenceId: string; t: number; value: number }>): Promise<Array<{ stored: boolean } | { error: FleetError }>> };
  logger: Logger;
}

/** A session after its hello: the client, the key its next line must carry, and where its keys' readings go. */
export interface KeyedSession {
  client: RrduinoClient;
  key: SessionKey;
  /** Sequence ids by name, found once per hello. */
  sequences: Map<string, string>;
  /** Time (ms) of the last values stored: each line's are later, even within one millisecond. */
  lastT: number;
}

export interface SessionState {
  keyed?: KeyedSession;
  /** Sends raw bytes to the client (the nonce: nothing else ever goes back). */
  write(bytes: Buffer): void;
}

/**
 * Why a connection is being closed, for the log: the protocol tells the client nothing, it just
 * reconnects and says hello again.
 */
export class Refusal extends Error {}

export const refuse = (reason: string) => new Refusal(reason);

/** A client's text, shortened and quoted for the log. */
export const quoted = (text: string) => JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
