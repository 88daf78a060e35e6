/** How `Sandbox.create` spaces its retries while the server has no capacity. */
export interface BackoffPolicy {
  /** Delay before the first retry, in milliseconds. */
  initialDelayMs: number;
  /** Largest delay between two tries, in milliseconds. */
  maxDelayMs: number;
  /** Factor the delay grows by after each try. */
  multiplier: number;
}

/** The policy `Sandbox.create` uses: 250 ms, doubling, at most 5 s between tries. */
export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialDelayMs: 250,
  maxDelayMs: 5_000,
  multiplier: 2,
};

/**
 * The delay before retry number `attempt` (0 for the first retry): exponential with "equal
 * jitter" (half fixed, half random) so that many clients refused at once do not come back at
 * once, never shorter than the server's `Retry-After`, and never past the deadline.
 *
 * @param retryAfterMs - the server's `Retry-After`, in milliseconds, if it sent one
 * @param remainingMs - time left before the caller's deadline, in milliseconds
 * @param random - a number in [0, 1); injectable for tests
 */
export function backoffDelayMs(
  attempt: number,
  retryAfterMs: number | undefined,
  remainingMs: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: number = Math.random(),
): number {
  const exponential = Math.min(
    policy.maxDelayMs,
    policy.initialDelayMs * policy.multiplier ** Math.max(0, attempt),
  );
  const jittered = exponential / 2 + (exponential / 2) * random;
  const wanted = Math.max(jittered, retryAfterMs ?? 0);
  return Math.max(0, Math.min(Math.round(wanted), remainingMs));
}

/** Resolves after `ms` milliseconds, or rejects with the signal's reason once it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new DOMException('aborted', 'AbortError');
}
