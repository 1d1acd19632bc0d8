// Polling instead of sleeping: a test states what must become true and how long it is
// willing to wait; the machine's speed only decides how soon it passes.

const DEFAULT_PATIENCE_MS = 10_000;

/** How long tests wait for things to happen; one knob (MESH_TEST_PATIENCE_MS) for slow machines. */
export function patienceMs(): number {
  const raw = process.env.MESH_TEST_PATIENCE_MS;
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isFinite(n) && n > 0 ? n : DEFAULT_PATIENCE_MS;
}

export interface EventuallyOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Names the awaited condition in the timeout error. */
  what?: string;
}

/**
 * Re-runs `probe` until it returns without throwing (and, for a boolean, returns true).
 * Resolves with the probe's value; on timeout rejects naming `what` and the last failure.
 */
export async function eventually<T>(
  probe: () => T | Promise<T>,
  opts: EventuallyOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? patienceMs();
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let last: unknown = new Error('probe never ran');
  for (;;) {
    try {
      // A probe that hangs must not outlive the deadline, so each attempt is raced against it.
      const value = await withDeadline(Promise.resolve().then(probe), deadline);
      if (value !== false) return value;
      last = new Error('probe returned false');
    } catch (err) {
      last = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      const reason = last instanceof Error ? last.message : String(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'condition'}: ${reason}`, {
        cause: last,
      });
    }
    await delay(Math.min(intervalMs, left));
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withDeadline<T>(p: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('probe still running at deadline')), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}
