// Node's timers: the longest delay setTimeout keeps is 2^31-1 ms (~24.8 days); past it,
// the timer fires after 1 ms. Every timer the proxy sets from a configured or computed
// delay is bounded by this.

/** The longest delay a Node timer keeps, ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
