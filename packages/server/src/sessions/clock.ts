/** Time as the sessions see it; tests pass their own to move it forward. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
