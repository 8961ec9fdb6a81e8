/**
 * JetStream errors worth another try at start-up or after a node loss: a request that timed out,
 * "no responders" on a JetStream API subject (nats.js reports it as "jetstream is not enabled"),
 * or a cluster without a leader yet. A JetStream that really is disabled keeps answering so, and
 * the caller's deadline then ends the retries with the error.
 */
export function isTransientJsError(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown; message?: unknown; api_error?: { code?: number } };
  const msg = typeof e?.message === "string" ? e.message : "";
  return (
    e?.name === "TimeoutError" ||
    e?.name === "JetStreamNotEnabled" ||
    e?.code === "TIMEOUT" ||
    e?.api_error?.code === 503 ||
    /timeout|timed out|not enabled|no responders|no suitable peers|leader|unavailable|insufficient resources/i.test(
      msg,
    )
  );
}

/**
 * `fn` retried while it fails with a transient JetStream error (or one `retryable` accepts), for at
 * most `forMs` (then the last error is thrown); any other error at once. Backoff 200 ms doubling
 * to 2 s.
 */
export async function retryTransient<T>(
  fn: () => Promise<T>,
  o: {
    forMs: number;
    onRetry?: (err: unknown, attempt: number) => void;
    retryable?: (err: unknown) => boolean;
  },
): Promise<T> {
  const started = performance.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const retry = isTransientJsError(err) || (o.retryable?.(err) ?? false);
      if (!retry || performance.now() - started > o.forMs) throw err;
      o.onRetry?.(err, attempt);
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** Math.min(attempt, 5))));
    }
  }
}
