/**
 * Reconnect: what the engine does when its NATS connection drops and comes back. After a reconnect
 * JetStream may not answer yet (a cluster electing stream leaders after a node died), and the
 * consumers may have lived on the node that went away: re-measure, then open every consumer again
 * from its cursor, each step retried until it succeeds; then catch up. A later reconnect supersedes
 * this one, and closing ends it.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { StreamName } from "../contract/subjects.js";
import type { Follower } from "../ingest/follower.js";
import type { Logger } from "../obs/log.js";

export interface Reconnect {
  /** Starts catching up after a reconnect (superseding any earlier one); resolves when it ends. */
  reconnected(): Promise<void>;
}

export function createReconnect(o: {
  follower: Pick<Follower, "remeasure" | "reopen">;
  streams: readonly StreamName[];
  closing: () => boolean;
  /** Catch up and become ready (run once every consumer is open again). */
  catchUp: () => Promise<void>;
  log: Logger;
  /** Waits between attempts (default: a timer). */
  pause?: (ms: number) => Promise<unknown>;
}): Reconnect {
  const pause = o.pause ?? ((ms: number) => delay(ms));
  let reconnects = 0;
  const retrying = async (gen: number, what: string, step: () => Promise<void>): Promise<boolean> => {
    for (let attempt = 1; ; attempt++) {
      if (gen !== reconnects || o.closing()) return false;
      try {
        await step();
        return true;
      } catch (err) {
        o.log.warn({ err, attempt }, `${what} after reconnect failed; retrying`);
        await pause(Math.min(100 * attempt, 1000));
      }
    }
  };
  const catchUpAfterReconnect = async (gen: number): Promise<void> => {
    if (!(await retrying(gen, "remeasure", () => o.follower.remeasure()))) return;
    const reopened = await Promise.all(
      o.streams.map((stream) => retrying(gen, `reopen ${stream}`, () => o.follower.reopen(stream))),
    );
    if (reopened.every(Boolean) && gen === reconnects) await o.catchUp();
  };
  return { reconnected: () => catchUpAfterReconnect(++reconnects) };
}

/** Follows the connection's status events until it ends or the engine closes. */
export async function watchStatus(
  events: AsyncIterable<{ type: string }>,
  o: { closing: () => boolean; disconnected: () => void; reconnected: () => void },
): Promise<void> {
  for await (const s of events) {
    if (o.closing()) break;
    if (s.type === "disconnect") o.disconnected();
    else if (s.type === "reconnect") o.reconnected();
  }
}
