/** RDFM's close codes of the device WebSocket (antmicro/rdfm:server/src/api/v1/ws/device.py). */
export const rdfmCloseCodes = {
  /** Bad JSON, an unknown method, an unknown execution id, a malformed frame. */
  invalidRequest: 4001,
  /** A WebSocket of the same MAC is open already. */
  duplicate: 4002,
} as const;
