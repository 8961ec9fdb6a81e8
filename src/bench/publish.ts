/** Bulk JetStream publishing with a window of acknowledgements in flight (setting up books). */
import type { JetStreamClient } from "@nats-io/jetstream";
import { progress } from "./util.js";

export interface Outgoing {
  subject: string;
  data: string;
  msgID?: string;
}

export interface PublishReport {
  count: number;
  seconds: number;
  per_s: number;
  /** The highest acknowledged sequence per stream. */
  last_seq: Record<string, number>;
}

export async function publishAll(
  js: JetStreamClient,
  count: number,
  make: (i: number) => Outgoing,
  o: { window?: number; label?: string } = {},
): Promise<PublishReport> {
  const window = o.window ?? 2000;
  const every = count >= 200_000 ? 100_000 : 0;
  const lastSeq: Record<string, number> = {};
  let inFlight = 0;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const t0 = performance.now();
  const settled = (): void => {
    inFlight--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  for (let i = 0; i < count; i++) {
    while (inFlight >= window) await new Promise<void>((done) => (wake = done));
    if (failure !== undefined) break;
    const m = make(i);
    inFlight++;
    js.publish(m.subject, m.data, { timeout: 30_000, ...(m.msgID ? { msgID: m.msgID } : {}) }).then(
      (ack) => {
        if ((lastSeq[ack.stream] ?? 0) < ack.seq) lastSeq[ack.stream] = ack.seq;
        settled();
      },
      (err: unknown) => {
        failure ??= err;
        settled();
      },
    );
    if (every && i > 0 && i % every === 0) progress(`${o.label ?? "publish"}: ${i} of ${count}`);
  }
  while (inFlight > 0) await new Promise<void>((done) => (wake = done));
  if (failure !== undefined) throw new Error(`${o.label ?? "publish"} failed`, { cause: failure });
  const seconds = (performance.now() - t0) / 1000;
  return { count, seconds: +seconds.toFixed(2), per_s: Math.round(count / seconds), last_seq: lastSeq };
}
