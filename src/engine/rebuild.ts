/**
 * `mts-risk rebuild`: replays every consumed stream from its first message into a fresh state and
 * snapshot, and reports the state digest. Streams are replayed one after another; the projections
 * do not depend on how streams interleave, so the digest equals a live engine's.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { rmSync } from "node:fs";
import type { Config } from "../config/index.js";
import { CONSUMED_STREAMS } from "../contract/subjects.js";
import { connectBus } from "../bus/connect.js";
import { createFollower } from "../ingest/follower.js";
import type { Logger } from "../obs/log.js";
import {
  createState,
  foldTheRebuildWay,
  openSnapshot,
  revalueDeferred,
  stateDigest,
  sweepIdempotency,
  sweepReservations,
} from "../state/index.js";
import type { Clock } from "../time/clock.js";
import { stateSettings } from "./engine.js";
import { cursorsOf } from "../service/status.js";
import { createRebuildWriter } from "./rebuild-writer.js";

export interface RebuildResult {
  state_digest: string;
  events: number;
  invalid: number;
  seconds: number;
  events_per_s: number;
  cursors: Record<string, number>;
  snapshot: string;
  /** The creation time of each stream read: the bus the snapshot is of (bus-identity.ts). */
  streams: Record<string, string>;
}

export async function rebuild(o: {
  config: Config;
  out: string;
  clock: Clock;
  log: Logger;
  onProgress?: (applied: number, behind: number) => void;
}): Promise<RebuildResult> {
  const log = o.log.child({ module: "rebuild" });
  const nc = await connectBus({
    url: o.config.nats.url,
    name: "riskengine:rebuild",
    user: o.config.nats.user,
    pass: o.config.nats.pass,
    inboxPrefix: o.config.nats.inbox_prefix,
  });
  try {
    const jsm = await jetstreamManager(nc);
    // short API timeout: a consumer create a degraded cluster never answers is retried (follower)
    const js = jetstream(nc, { timeout: 1000 });
    for (const suffix of ["", "-wal", "-shm"]) rmSync(o.out + suffix, { force: true });
    const snapshot = openSnapshot(o.out);
    const state = createState(stateSettings(o.config));
    foldTheRebuildWay(state); // books valued once at the end (revalueDeferred), orders of fills alone noted (sweep)
    let events = 0;
    let invalid = 0;
    const t0 = performance.now();
    // a failed background write stops the rebuild with its error (see the catch below)
    const stopped = new AbortController();
    const writer = createRebuildWriter({ snapshot, state, onFailure: () => stopped.abort() });
    const existing = new Set<string>();
    for await (const name of jsm.streams.names()) existing.add(name);
    const streams: Record<string, string> = {};
    for (const s of CONSUMED_STREAMS) if (existing.has(s)) streams[s] = (await jsm.streams.info(s)).created;
    for (const stream of CONSUMED_STREAMS) {
      if (!existing.has(stream)) continue;
      const f = createFollower({
        js,
        jsm,
        state,
        streams: [stream],
        log,
        onResult: (_s, _m, r) => {
          events++;
          if (!r.ok) invalid++;
          writer.folded();
        },
      });
      await f.start();
      const timer = setInterval(() => {
        o.onProgress?.(events, f.behind());
        log.info({ stream, applied: events, behind: f.behind() }, "rebuilding");
      }, 1000);
      try {
        await f.waitCaughtUp(stopped.signal);
      } catch (err) {
        if (stopped.signal.aborted) await writer.drain(); // rejects with the write's error
        throw err;
      } finally {
        clearInterval(timer);
        await f.stop();
      }
    }
    // where the time went (the log's "rebuilt" line): folding, then each step of the end
    const lap = (() => {
      let t = performance.now();
      return () => {
        const n = performance.now();
        const s = +((n - t) / 1000).toFixed(3);
        t = n;
        return s;
      };
    })();
    const phases: Record<string, number> = { fold_s: +((performance.now() - t0) / 1000).toFixed(3) };
    await writer.drain();
    phases.drain_s = lap();
    const now = o.clock.now();
    sweepReservations(state, now);
    sweepIdempotency(state, now);
    revalueDeferred(state);
    phases.sweep_revalue_s = lap();
    log.info({ events }, "writing the snapshot");
    writer.finish();
    phases.write_s = lap();
    // the idempotency records are read back from the snapshot: the digest before it is closed
    const digest = stateDigest(state);
    phases.digest_s = lap();
    snapshot.close();
    phases.close_s = lap();
    const seconds = (performance.now() - t0) / 1000;
    log.info({ events, seconds: +seconds.toFixed(3), ...phases }, "rebuilt");
    return {
      state_digest: digest,
      events,
      invalid,
      seconds,
      events_per_s: seconds > 0 ? Math.round(events / seconds) : events,
      cursors: cursorsOf(state),
      snapshot: o.out,
      streams,
    };
  } finally {
    await nc.drain().catch(() => undefined);
  }
}
