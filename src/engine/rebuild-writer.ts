/**
 * How `mts-risk rebuild` writes its snapshot: the fill ids (one row a fill, never changed again in
 * a fold) by the worker thread while folding goes on; everything else once, at the end. A book, an
 * order or a fund changes with many events, and an order a fill creates is often forgotten by the
 * end: written along the way, each would be serialized and written many times, or written and
 * deleted. The file is fresh, so what was never written needs no delete. Every write before the
 * last marks the snapshot unfinished (load() refuses it); the last one clears the mark.
 */
import type { EngineState, FlushReport, Snapshot } from "../state/index.js";

/** Events folded between two background writes. */
export const REBUILD_WRITE_EVERY = 25_000;
/**
 * Idempotency records held in memory past which a background write is a full one (on disk, they
 * leave memory; so do ended order records): a journal of many decisions is rebuilt in bounded
 * memory, as live. Still unfinished: only the last write makes the file a snapshot.
 */
export const REBUILD_IDEM_RESIDENT = 25_000;

export interface RebuildWriter {
  /** After each folded event: every `every` events, a background write. */
  folded(): void;
  /** Waits for the background writes; rejects with the first one's error. */
  drain(): Promise<void>;
  /** Writes the rest, with the cursors, and clears the unfinished mark (after drain(), once the state is final). */
  finish(): FlushReport;
}

export function createRebuildWriter(o: {
  snapshot: Pick<Snapshot, "flush" | "flushAheadInBackground">;
  state: EngineState;
  every?: number;
  idemResident?: number;
  /** A background write failed (once, with its error): the rebuild stops and drain() rejects with it. */
  onFailure?: (err: unknown) => void;
}): RebuildWriter {
  const every = o.every ?? REBUILD_WRITE_EVERY;
  const idemResident = o.idemResident ?? REBUILD_IDEM_RESIDENT;
  let events = 0;
  let full = 0;
  /**
   * The first background write that failed: kept here (never an unhandled rejection while the
   * fold goes on), told to onFailure at once, and thrown by drain().
   */
  let failed: { err: unknown } | undefined;
  const settle = (p: Promise<unknown>): Promise<void> =>
    p.then(
      () => undefined,
      (err: unknown) => {
        if (failed) return;
        failed = { err };
        o.onFailure?.(err);
      },
    );
  // the fresh file is marked unfinished before anything is folded: even a rebuild interrupted
  // before its first write along the way leaves no file that loads (as an empty snapshot)
  let written: Promise<void> = settle(o.snapshot.flushAheadInBackground(o.state, "fill_ids"));
  const writeAhead = (): Promise<unknown> => {
    if (failed) return Promise.resolve(); // nothing more after a failed write
    if (o.state.idem.resident < idemResident) return o.snapshot.flushAheadInBackground(o.state, "fill_ids");
    full++;
    return o.snapshot.flushAheadInBackground(o.state, "all");
  };
  const check = (): void => {
    if (failed) throw failed.err;
  };
  return {
    folded() {
      if (++events % every === 0) written = written.then(() => settle(writeAhead()));
    },
    drain: () => written.then(check),
    finish() {
      // only the fill ids (their own store, not `deleted`) were written to the fresh file, unless
      // a full write was needed: no other row is on disk, so no delete is
      if (full === 0) for (const keys of o.state.deleted.values()) keys.clear();
      return o.snapshot.flush(o.state);
    },
  };
}
