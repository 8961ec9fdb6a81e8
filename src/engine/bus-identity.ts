/**
 * Which bus a snapshot was built from. A snapshot's cursors are stream sequences: on another bus
 * (a NATS server rebuilt, a state directory copied to another environment, streams deleted and
 * provisioned again) they name other messages, and an engine that trusted them skipped the new
 * streams' first messages and approved with an envelope of the old bus. `<state.dir>/streams.json`
 * holds each consumed stream's creation time as the snapshot saw it; a snapshot whose streams were
 * created since, or whose cursors are past the streams' last sequences, is set aside and the state
 * is rebuilt from the streams.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { StreamName } from "../contract/subjects.js";

export interface StreamIdentity {
  created: string;
  lastSeq: number;
}

export async function streamIdentity(
  jsm: JetStreamManager,
  streams: readonly StreamName[],
): Promise<Map<StreamName, StreamIdentity>> {
  const out = new Map<StreamName, StreamIdentity>();
  for (const s of streams) {
    const info = await jsm.streams.info(s);
    out.set(s, { created: info.created, lastSeq: info.state.last_seq });
  }
  return out;
}

const fileOf = (dir: string) => join(dir, "streams.json");

/** Why the snapshot in `dir` is not of this bus (streams created since it was built), if so. */
export function otherBus(dir: string, now: Map<StreamName, StreamIdentity>): string | undefined {
  const file = fileOf(dir);
  if (!existsSync(file)) return undefined;
  let seen: Record<string, string>;
  try {
    seen = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
  } catch {
    return undefined; // unreadable: judged by its cursors alone
  }
  for (const [s, id] of now) {
    const was = seen[s];
    if (was !== undefined && was !== id.created)
      return `stream ${s} was created ${id.created}, the snapshot's on ${was}`;
  }
  return undefined;
}

/** Why the cursors cannot be of these streams (a cursor past a stream's last sequence), if so. */
export function cursorsPast(
  cursors: ReadonlyMap<string, number>,
  now: Map<StreamName, StreamIdentity>,
): string | undefined {
  for (const [s, seq] of cursors) {
    const id = now.get(s as StreamName);
    if (id && seq > id.lastSeq) return `cursor ${s} ${seq} is past the stream's last sequence ${id.lastSeq}`;
  }
  return undefined;
}

/**
 * Writes `streams.json`: the bus the state directory's snapshot is of (the engine at each start;
 * `rebuild --install` with the streams it read, so a snapshot rebuilt from another bus and
 * installed is set aside by the next start rather than trusted).
 */
export function rememberBus(
  dir: string,
  now: Map<StreamName, StreamIdentity> | Record<string, string>,
): void {
  const created = now instanceof Map ? Object.fromEntries([...now].map(([s, id]) => [s, id.created])) : now;
  writeFileSync(fileOf(dir), `${JSON.stringify(created)}\n`);
}

/** Moves a snapshot's files aside (`<file>.other-bus-<ms>`); returns the new name. */
export function setAside(snapshot: string, at: number): string {
  const to = `${snapshot}.other-bus-${at}`;
  for (const suffix of ["", "-wal", "-shm"]) {
    if (existsSync(snapshot + suffix)) renameSync(snapshot + suffix, to + suffix);
  }
  return to;
}
