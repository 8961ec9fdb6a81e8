/**
 * Stream provisioning at start-up: a missing stream is created from the catalog; an existing one
 * is updated only when the engine owns it, never recreated.
 */
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { OWNED_STREAMS, type StreamSpec } from "../contract/subjects.js";
import type { Logger } from "../obs/log.js";
import { retryTransient } from "./transient.js";

export const MAX_MSG_BYTES = 1024 * 1024;

export function streamConfig(spec: StreamSpec, replicas: number): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    subjects: spec.subjects,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: spec.max_age_ns,
    max_msgs_per_subject: spec.max_msgs_per_subject,
    duplicate_window: spec.duplicate_window_ns,
    num_replicas: replicas,
    max_msg_size: MAX_MSG_BYTES,
  };
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; api_error?: { err_code?: number } };
  return (
    e?.api_error?.err_code === 10059 ||
    (typeof e?.message === "string" && /stream not found/i.test(e.message))
  );
}

/**
 * Another engine created the stream between our lookup and our create (engines started together):
 * "name in use", or, as nats-server 2.9 answers it, "subjects overlap with an existing stream".
 * Only a race if the stream now exists under our name; otherwise a foreign stream really holds the
 * subjects (the caller looks).
 */
export function lostCreateRace(err: unknown): boolean {
  const e = err as { message?: unknown; api_error?: { err_code?: number } };
  const code = e?.api_error?.err_code;
  return (
    code === 10058 ||
    code === 10065 ||
    (typeof e?.message === "string" && /already in use|subjects overlap/i.test(e.message))
  );
}

async function lookup(jsm: JetStreamManager, name: string): Promise<StreamConfig | undefined> {
  try {
    return (await jsm.streams.info(name)).config;
  } catch (err) {
    if (!isNotFound(err)) throw err;
    return undefined;
  }
}

/** Create the stream, or, when another engine created it first, the config it created. */
async function create(
  jsm: JetStreamManager,
  want: Partial<StreamConfig> & { name: string },
): Promise<StreamConfig | undefined> {
  try {
    await jsm.streams.add(want);
    return undefined;
  } catch (err) {
    if (!lostCreateRace(err)) throw err;
    const theirs = await lookup(jsm, want.name);
    if (!theirs) throw err;
    return theirs;
  }
}

export type ProvisionResult = Record<string, "created" | "updated" | "unchanged" | "foreign">;

export interface ProvisionOptions {
  /** How long transient JetStream errors are retried before start-up fails (default 60 s). */
  retryForMs?: number;
}

/**
 * Provision every stream of the catalog. Several engines started at once on a fresh cluster race to
 * create the same streams: the loser of each create reads the winner's stream (`create`). A
 * cluster that is still electing its meta leader answers with timeouts or "jetstream is not
 * enabled": those are retried up to `retryForMs`; any other error fails at once.
 */
export async function ensureStreams(
  jsm: JetStreamManager,
  catalog: StreamSpec[],
  replicas: number,
  log: Logger,
  opts: ProvisionOptions = {},
): Promise<ProvisionResult> {
  return retryTransient(() => provision(jsm, catalog, replicas, log), {
    forMs: opts.retryForMs ?? 60_000,
    onRetry: (err, attempt) =>
      log.warn({ err: String(err), attempt }, "stream provisioning failed, retrying"),
  });
}

async function provision(
  jsm: JetStreamManager,
  catalog: StreamSpec[],
  replicas: number,
  log: Logger,
): Promise<ProvisionResult> {
  const out: ProvisionResult = {};
  // every stream's info asked at once (a restart waits for one round trip, not one a stream)
  const infos = await Promise.all(catalog.map((spec) => lookup(jsm, spec.name)));
  for (const [i, spec] of catalog.entries()) {
    const want = streamConfig(spec, replicas);
    const existing = infos[i] ?? (await create(jsm, want));
    if (!existing) {
      out[spec.name] = "created";
      continue;
    }
    if (!OWNED_STREAMS.has(spec.name)) {
      const missing = spec.subjects.filter((s) => !existing.subjects.includes(s));
      if (missing.length > 0)
        log.warn({ stream: spec.name, missing }, "foreign stream lacks catalog subjects");
      out[spec.name] = "foreign";
      continue;
    }
    const differs =
      JSON.stringify([...existing.subjects].sort()) !== JSON.stringify([...spec.subjects].sort()) ||
      existing.max_age !== want.max_age ||
      existing.max_msgs_per_subject !== want.max_msgs_per_subject ||
      existing.duplicate_window !== want.duplicate_window;
    if (differs) {
      const { name: _n, num_replicas: _r, storage: _s, ...update } = want;
      await jsm.streams.update(spec.name, update);
      out[spec.name] = "updated";
    } else out[spec.name] = "unchanged";
  }
  return out;
}
