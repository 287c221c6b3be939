import { randomBytes } from 'node:crypto';
import { isClientId } from '../../services/rrduino-profiles.ts';
import { quoted, refuse, type SessionContext, type SessionState } from './context.ts';
import { nonceLength, SessionKey } from './session-key.ts';

/** Python's str.strip(): ASCII whitespace only, as upstream trims the client id. */
const surroundingWhitespace = /^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g;

/**
 * `h <client_id>`: loads the client's profile, sends a fresh nonce and derives k0 from it. Said
 * again within a session it re-reads the profile and re-keys, as upstream does; the old key is
 * dropped only once the new profile is known.
 */
export async function handleHello(state: SessionState, context: SessionContext, data: string): Promise<void> {
  const clientId = data.replace(surroundingWhitespace, '');
  if (!isClientId(clientId)) throw refuse(`hello with a client id that is not 1 to 64 letters, digits, _ . or -: ${quoted(clientId)}`);
  const client = await context.profiles.client(clientId);
  if (!client) throw refuse(`hello from unknown client ${clientId}`);
  const nonce = randomBytes(nonceLength);
  state.keyed = { client, key: new SessionKey(client.master, nonce), sequences: new Map(), lastT: 0 };
  state.write(nonce);
}
