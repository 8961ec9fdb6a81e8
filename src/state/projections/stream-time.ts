/**
 * A message's own timestamp bounded by when its stream stored it. A publisher whose clock runs fast
 * (a quote an hour ahead, a fill stamped 2099) would otherwise hold the mark against every correct
 * quote, or move the fill-id watermark so far that every fill id seen before is forgotten. The
 * stream's time is stored with the message, so every fold (live, rebuild, explain) bounds it alike.
 */
export const STREAM_LEAD_MS = 1000;

/** `ts`, at most STREAM_LEAD_MS past `storedMs` (unbounded when the stream's time is unknown). */
export function boundedByStream(ts: number, storedMs: number | undefined): number {
  return storedMs === undefined ? ts : Math.min(ts, storedMs + STREAM_LEAD_MS);
}
