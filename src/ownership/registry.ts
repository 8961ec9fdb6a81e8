/**
 * Membership and leases in one JetStream KV bucket (RISK_OWNERSHIP; nats-server 2.9: no per-key
 * TTL). `engine.<instance>`: each engine's heartbeat, rewritten every `heartbeatMs` by compare-and-
 * set on its own revision. `lease.<partition>`: `{ owner }`, changed only by compare-and-set on the
 * lease's revision, which is the partition's fencing epoch. Liveness is judged by each observer on
 * its own monotonic clock (a heartbeat not seen to change for `deadMs`), never by comparing clocks;
 * an engine trusts its own leases only while its last acknowledged heartbeat is recent (`freshMs`).
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { type KV, type KvWatchEntry, Kvm } from "@nats-io/kv";
import { lostCreateRace } from "../bus/streams.js";
import { retryTransient } from "../bus/transient.js";
import type { Logger } from "../obs/log.js";
import { type Clock, iso } from "../time/clock.js";

export const OWNERSHIP_BUCKET = "RISK_OWNERSHIP";

export interface Heartbeat {
  instance: string;
  /** Where forwarded checks reach this engine. */
  subject: string;
  /** Identifies the state directory: an engine with the same home and another instance is its predecessor. */
  home: string;
  ready: boolean;
  leaving: boolean;
  /** The writer's clock (information only; liveness never compares clocks). */
  at: string;
}

export interface Member extends Heartbeat {
  revision: number;
  /** mono() when this revision was seen. */
  seenAt: number;
}

export interface Lease {
  owner: string; // "" = released
  revision: number;
}

export interface RegistryOptions {
  js: JetStreamClient;
  self: Omit<Heartbeat, "ready" | "leaving" | "at">;
  replicas: number;
  heartbeatMs: number;
  deadMs: number;
  freshMs: number;
  clock: Clock;
  /** Monotonic milliseconds (default performance.now): liveness and lease freshness. */
  monotonic?: () => number;
  log: Logger;
  onChange: () => void;
}

export interface Registry {
  start(): Promise<void>;
  /** True once the watch has delivered everything stored before this engine's first heartbeat. */
  synced(): boolean;
  members(): ReadonlyMap<string, Member>;
  leases(): ReadonlyMap<number, Lease>;
  isLive(instance: string): boolean;
  /** Registered, and not this engine's predecessor on its state directory (which is gone). */
  known(instance: string): boolean;
  /** This engine's leases may be trusted: its last heartbeat was acknowledged recently. */
  fresh(): boolean;
  setStatus(s: { ready: boolean; leaving: boolean }): void;
  heartbeat(): Promise<void>;
  /** Compare-and-set of a lease; resolves with the new revision (its epoch), undefined on conflict. */
  casLease(partition: number, owner: string, revision: number | undefined): Promise<number | undefined>;
  /** Stops heartbeating; `graceful` also deletes this engine's heartbeat (a crash leaves it). */
  stop(graceful?: boolean): Promise<void>;
}

const te = new TextEncoder();
const engineKey = (instance: string) => `engine.${instance}`;
const leaseKey = (p: number) => `lease.${p}`;
/** A heartbeat whose writer's clock is this far behind ours when first seen is dead already. */
const OBVIOUSLY_DEAD_MS = 60_000;

export function createRegistry(o: RegistryOptions): Registry {
  const log = o.log.child({ module: "registry" });
  const mono = o.monotonic ?? (() => performance.now());
  const members = new Map<string, Member>();
  const leases = new Map<number, Lease>();
  let kv: KV | undefined;
  let myRevision: number | undefined;
  let firstRevision: number | undefined;
  /**
   * The highest revision of this engine's own key the watch has delivered. The watch may deliver
   * the first heartbeat before its put is acknowledged (two subjects, no order between them): the
   * view is synced whichever of the two comes second.
   */
  let selfSeen = 0;
  let isSynced = false;
  let startedAt = Number.POSITIVE_INFINITY;
  let lastAckSentAt = Number.NEGATIVE_INFINITY;
  let status = { ready: false, leaving: false };
  let stopped = false;
  let watch: { stop(): void } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let awakeTimer: NodeJS.Timeout | undefined;
  let beating: Promise<void> | undefined;

  function apply(e: KvWatchEntry): void {
    if (e.key.startsWith("engine.")) {
      const instance = e.key.slice("engine.".length);
      if (e.operation !== "PUT") members.delete(instance);
      else {
        try {
          const h = e.json<Heartbeat>();
          const stale = !e.isUpdate && o.clock.now() - e.created.getTime() > OBVIOUSLY_DEAD_MS;
          // what was stored before this engine started counts as seen just before it started
          const seenAt = stale ? -Infinity : e.isUpdate ? mono() : Math.min(mono(), startedAt - 1);
          members.set(instance, { ...h, revision: e.revision, seenAt });
        } catch {
          members.delete(instance);
        }
      }
      if (instance === o.self.instance) {
        selfSeen = Math.max(selfSeen, e.revision);
        if (firstRevision !== undefined && selfSeen >= firstRevision) isSynced = true;
      }
    } else if (e.key.startsWith("lease.")) {
      const p = Number(e.key.slice("lease.".length));
      if (!Number.isInteger(p)) return;
      if (e.operation !== "PUT") leases.set(p, { owner: "", revision: e.revision });
      else {
        try {
          const v = e.json<{ owner?: unknown }>();
          leases.set(p, { owner: typeof v.owner === "string" ? v.owner : "", revision: e.revision });
        } catch {
          leases.set(p, { owner: "", revision: e.revision });
        }
      }
    }
    o.onChange();
  }

  /** Our predecessor on this state directory (not heard of since we started). */
  const predecessor = (m: Member) => m.home === o.self.home && m.seenAt < startedAt;

  function isLive(instance: string): boolean {
    awake();
    if (instance === o.self.instance) return !stopped && fresh();
    const m = members.get(instance);
    if (!m || predecessor(m)) return false;
    return mono() - m.seenAt < o.deadMs;
  }

  function known(instance: string): boolean {
    const m = members.get(instance);
    return m !== undefined && !predecessor(m);
  }

  function fresh(): boolean {
    return mono() - lastAckSentAt < o.freshMs;
  }

  async function heartbeat(): Promise<void> {
    if (!kv || stopped) return;
    const body: Heartbeat = { ...o.self, ...status, at: iso(o.clock.now()) };
    const sentAt = mono();
    const data = te.encode(JSON.stringify(body));
    try {
      myRevision =
        myRevision === undefined
          ? await kv.put(engineKey(o.self.instance), data)
          : await kv.update(engineKey(o.self.instance), data, myRevision);
    } catch (err) {
      // someone rewrote or deleted our key (or the bus is away): put it again next time
      myRevision = undefined;
      throw err;
    }
    firstRevision ??= myRevision;
    if (selfSeen >= firstRevision) isSynced = true;
    lastAckSentAt = Math.max(lastAckSentAt, sentAt);
  }

  /**
   * A paused or blocked process (SIGSTOP, a long GC, a saturated event loop) must not judge peers
   * dead by the time it was away: their last-seen times move on by the gap, as if it had not passed.
   */
  let lastAwake = Number.NaN;
  function awake(): void {
    const now = mono();
    const gap = now - lastAwake;
    lastAwake = now;
    if (!(gap > o.heartbeatMs)) return;
    for (const m of members.values()) if (m.seenAt >= startedAt) m.seenAt += gap;
  }

  function beat(): void {
    if (beating) return;
    beating = heartbeat()
      .catch((err: unknown) => log.warn({ err }, "heartbeat failed"))
      .finally(() => {
        beating = undefined;
        o.onChange();
      });
  }

  /**
   * The bucket, created by the first engine; a cluster still settling is retried for 30 s, and so is
   * the loser of two engines' create race (its create answered "name in use" or "subjects overlap";
   * the retry finds the winner's bucket).
   */
  async function openBucket(): Promise<KV> {
    return retryTransient(
      () => new Kvm(o.js).create(OWNERSHIP_BUCKET, { history: 1, replicas: o.replicas }),
      {
        forMs: 30_000,
        retryable: lostCreateRace,
        onRetry: (err, attempt) =>
          log.warn({ err: String(err), attempt }, "ownership bucket not available yet; retrying"),
      },
    );
  }

  return {
    async start() {
      startedAt = mono();
      kv = await openBucket();
      const it = await kv.watch({ key: ">" });
      watch = it;
      void (async () => {
        for await (const e of it) apply(e);
      })().catch((err: unknown) => log.error({ err }, "ownership watch failed"));
      // the first write to a bucket just created on a fresh cluster may find no responders yet
      await retryTransient(heartbeat, {
        forMs: 30_000,
        onRetry: (err, attempt) =>
          log.warn({ err: String(err), attempt }, "first heartbeat not stored yet; retrying"),
      });
      lastAwake = mono();
      timer = setInterval(beat, o.heartbeatMs);
      awakeTimer = setInterval(awake, 100);
    },
    synced: () => isSynced,
    members: () => members,
    leases: () => leases,
    isLive,
    known,
    fresh,
    setStatus(s) {
      const changed = s.ready !== status.ready || s.leaving !== status.leaving;
      status = s;
      if (changed) beat();
    },
    heartbeat,
    async casLease(p, owner, revision) {
      if (!kv) return undefined;
      const data = te.encode(JSON.stringify({ owner, at: iso(o.clock.now()) }));
      try {
        return revision === undefined
          ? await kv.create(leaseKey(p), data)
          : await kv.update(leaseKey(p), data, revision);
      } catch (err) {
        log.debug({ err, partition: p }, "lease compare-and-set lost");
        return undefined;
      }
    },
    async stop(graceful = true) {
      stopped = true;
      if (timer) clearInterval(timer);
      if (awakeTimer) clearInterval(awakeTimer);
      watch?.stop();
      if (graceful && kv && myRevision !== undefined)
        await kv.delete(engineKey(o.self.instance)).catch(() => undefined);
    },
  };
}
