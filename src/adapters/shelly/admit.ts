import type { Admission, AdmissionRequest, FinalDecision } from '../../services/admission.ts';

export interface Admitting {
  /** Accepted or denied: at once, or when somebody decides on a pending device (on any node). */
  decided: Promise<FinalDecision>;
  /** The socket closed: stop waiting for a decision. */
  cancel(): void;
}

/**
 * Asks admission about a device that said hello. A pending device keeps its socket open and
 * waits here; `onPending` tells the session to keep only its newest status meanwhile.
 */
export function admit(admission: Admission, request: AdmissionRequest, onPending: (pendingId: string) => void): Admitting {
  let cancelled = false;
  let stopWaiting = () => {};
  const decided = admission.admit(request).then((decision) => {
    if (decision.status !== 'pending') return decision;
    onPending(decision.pendingId);
    return new Promise<FinalDecision>((resolve) => {
      if (!cancelled) stopWaiting = admission.waitForDecision(decision.pendingId, resolve);
    });
  });
  return {
    decided,
    cancel() {
      cancelled = true;
      stopWaiting();
    },
  };
}
