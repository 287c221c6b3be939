/** Seconds a device clock may be off before its timestamps are corrected (rhizo's rule). */
const driftTolerance = 30;
/** Seconds the kept correction may be off before it is measured anew. */
const correctionTolerance = 100;

/**
 * rhizo's correction of a drifting device clock (bulk update): when the device's timestamp is more
 * than 30 s off the server's clock, the kept correction is applied, and measured anew when it is
 * more than 100 s off the drift seen now. Times in ms, the correction in seconds as rhizo keeps it.
 */
export function correctDeviceTime(timestamp: number, now: number, correction: number): { t: number; correction: number } {
  const drift = (now - timestamp) / 1000;
  if (Math.abs(drift) <= driftTolerance) return { t: timestamp, correction };
  const kept = Math.abs(correction - drift) > correctionTolerance ? drift : correction;
  return { t: Math.round(timestamp + kept * 1000), correction: kept };
}
