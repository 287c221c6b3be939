/**
 * How a shell socket ends, besides the codes every socket shares (src/hub/socket.ts: 1001 shutting
 * down, 1009 frame too large, 4001 credentials revoked, 4008 too slow, 1011 internal error).
 */
export const shellCloseCodes = {
  /** The other side closed the shell. */
  ended: 1000,
  /** A text frame that is not a valid control frame. */
  invalidControl: 1007,
  /** The device did not dial back within shellAttachTimeout, or could not be told to (RDFM's code). */
  notAttached: 4001,
  /** A device socket whose session is gone (the operator left, or timed out, before it attached). */
  sessionGone: 4004,
  /** No byte either way for shellIdleTimeout. */
  idle: 4009,
} as const;
