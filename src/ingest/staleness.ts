/**
 * Staleness: every second, samples each followed stream's last sequence; the state is stale when
 * some stream's cursor is still below the last sequence sampled `boundMs` ago (its consumer is
 * stalled or far behind), or when no sample could be taken for `boundMs` (the server does not
 * answer). While stale the engine answers STATE_NOT_READY; the first stale sample per episode
 * raises a `lag` alert and reopens the lagging consumers.
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import type { StreamName } from "../contract/subjects.js";
import type { EngineState } from "../state/model.js";
/** A monotonic time source in ms (a watchdog measures elapsed real time, not the business clock). */
export type Monotonic = () => number;

export interface StaleReport {
  stale: boolean;
  lagging: { stream: StreamName; cursor: number; behind_seq: number }[];
  unmeasured_ms: number;
}

export interface StalenessMonitor {
  sample(): Promise<StaleReport>;
  stale(): boolean;
  /** Each stream's last sequence at the latest sample (undefined before the first). */
  latest(): Map<StreamName, number> | undefined;
}

export function createStalenessMonitor(o: {
  jsm: JetStreamManager;
  state: EngineState;
  streams: readonly StreamName[];
  boundMs: number;
  monotonic?: Monotonic;
}): StalenessMonitor {
  const clock = { now: o.monotonic ?? (() => performance.now()) };
  const history: { at: number; last: Map<StreamName, number> }[] = [];
  let lastMeasured = clock.now();
  let stale = false;
  return {
    stale: () => stale,
    latest: () => history[history.length - 1]?.last,
    async sample() {
      const now = clock.now();
      try {
        const last = new Map<StreamName, number>();
        for (const s of o.streams) {
          const info = await o.jsm.streams.info(s);
          last.set(s, info.state.messages === 0 ? 0 : info.state.last_seq);
        }
        history.push({ at: now, last });
        lastMeasured = now;
      } catch {
        // the server did not answer: judged by how long ago the last sample was taken
      }
      while (history.length > 1 && history[1]!.at <= now - o.boundMs) history.shift();
      const lagging: StaleReport["lagging"] = [];
      const old = history[0];
      if (old && old.at <= now - o.boundMs) {
        for (const [stream, seq] of old.last) {
          const cursor = o.state.cursors.get(stream) ?? 0;
          if (cursor < seq) lagging.push({ stream, cursor, behind_seq: seq });
        }
      }
      const unmeasured = now - lastMeasured;
      stale = lagging.length > 0 || unmeasured > o.boundMs;
      return { stale, lagging, unmeasured_ms: unmeasured };
    },
  };
}
