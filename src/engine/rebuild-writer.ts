/**
 * How `mts-risk rebuild` writes its snapshot: the fill ids (one row a fill, never changed again in
 * a fold) by the worker thread while folding goes on; everything else once, at the end. A book, an
 * order or a fund changes with many events, and an order a fill creates is often forgotten by the
 * end: written along the way, each would be serialized and written many times, or written and
 * deleted. The file is fresh, so what was never written needs no delete.
 */
import type { EngineState, EntityKind, FlushReport, Snapshot } from "../state/index.js";

/** Events folded between two background writes. */
export const REBUILD_WRITE_EVERY = 25_000;
/**
 * Idempotency records held in memory past which a background write is a full one (on disk, they
 * leave memory): a journal of many decisions is rebuilt in bounded memory, as live.
 */
export const REBUILD_IDEM_RESIDENT = 25_000;

const AHEAD: EntityKind = "fill_id";

export interface RebuildWriter {
  /** After each folded event: every `every` events, a background write. */
  folded(): void;
  /** Waits for the background writes. */
  drain(): Promise<void>;
  /** Writes the rest, with the cursors (after drain(), once the state is final). */
  finish(): FlushReport;
}

export function createRebuildWriter(o: {
  snapshot: Pick<Snapshot, "flush" | "flushInBackground" | "flushKindInBackground">;
  state: EngineState;
  every?: number;
  idemResident?: number;
}): RebuildWriter {
  const every = o.every ?? REBUILD_WRITE_EVERY;
  const idemResident = o.idemResident ?? REBUILD_IDEM_RESIDENT;
  let events = 0;
  let full = 0;
  let written: Promise<unknown> = Promise.resolve();
  const writeAhead = (): Promise<FlushReport> => {
    if (o.state.idem.resident < idemResident) return o.snapshot.flushKindInBackground(o.state, AHEAD);
    full++;
    return o.snapshot.flushInBackground(o.state);
  };
  return {
    folded() {
      if (++events % every === 0) written = written.then(writeAhead);
    },
    drain: () => written.then(() => undefined),
    finish() {
      // only the fill ids were written to the fresh file (unless a full write was needed)
      if (full === 0) for (const [kind, keys] of o.state.deleted) if (kind !== AHEAD) keys.clear();
      return o.snapshot.flush(o.state);
    },
  };
}
