/**
 * Partition ownership: which funds this engine decides. Each partition's lease is taken by
 * compare-and-set when the rendezvous hash over the live, ready engines names this engine and the
 * lease is free or its holder is dead; it is handed over (in-flight journal writes finished, then
 * released) when another live engine is the better owner or this one is leaving. A partition is
 * answered only once every decision journaled before its lease was taken has been applied and each
 * of its funds is fenced (an empty batch with `Mts-Fence` on its decision subject).
 */
import type { JetStreamManager } from "@nats-io/jetstream";
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "../obs/log.js";
import type { FundJournal } from "../service/fund-journal.js";
import type { EngineState } from "../state/model.js";
import { partitionOf, rendezvous } from "./partition.js";
import type { Registry } from "./registry.js";

export type Route =
  | { kind: "local" }
  | {
      kind: "remote";
      subject: string;
      owner: string;
      /**
       * The owner is not judged live here, but this engine could not take the partition over
       * anyway (catching up, leaving): it is asked all the same, since its heartbeat may only be
       * late in this engine's view. If nobody answers on its subject: `unavailable`, no engine can
       * take it (answer not ready at once); `wait`, another engine will (hold).
       */
      unsure?: "wait" | "unavailable";
    }
  | { kind: "wait" }
  | { kind: "unavailable" };

export interface OwnershipStatus {
  owned: number;
  partitions: number[];
  /** Lease revision (fencing epoch) of each owned partition. */
  epochs: Record<string, number>;
}

export interface Ownership {
  route(fund: string | undefined): Route;
  /** Resolves at the next change of the ownership view. */
  changed(): Promise<void>;
  /** This engine decides the fund now (workers run for it). */
  active(fund: string): boolean;
  /** This engine may write the fund's journal (its lease, and no newer fence). */
  mayWrite(fund: string): boolean;
  /** A fence read from the journal (`Mts-Fence: <instance> <epoch>`). */
  noteFence(fund: string, header: string): void;
  tick(): void;
  /**
   * This engine lost a partition it believed it held (it was paused or cut off): it takes none
   * back for a while (no flapping; a woken old owner decides nothing at once).
   */
  suspended(): boolean;
  /** Every partition the live engines' hash gives this engine is active here. */
  settled(): boolean;
  status(): OwnershipStatus;
  /** Hands every partition over and waits (up to `timeoutMs`) until other engines hold them. */
  leave(timeoutMs: number): Promise<void>;
  stop(): void;
}

export interface OwnershipOptions {
  instance: string;
  partitions: number;
  registry: Registry;
  jsm: JetStreamManager;
  state: EngineState;
  journal: FundJournal;
  /** Caught up with the streams (only a ready engine takes partitions). */
  ready: () => boolean;
  log: Logger;
  /** Ownership changes, for the operators (one alert per change batch). */
  announce: (message: string, details: Record<string, string>) => void;
  /** Partitions became active here: workers look at their funds again. */
  onGained: () => void;
}

interface Held {
  state: "acquiring" | "active" | "releasing";
  epoch: number;
}

const RELEASE_DRAIN_MS = 2000;
/** How long an engine that lost partitions it believed it held stays out of the assignment. */
export const REJOIN_AFTER_LOSS_MS = 30_000;
const CATCH_UP_MS = 10_000;

export function createOwnership(o: OwnershipOptions): Ownership {
  const log = o.log.child({ module: "ownership" });
  const me = o.instance;
  const mine = new Map<number, Held>();
  const fences = new Map<string, number>(); // fund -> highest fence epoch read
  const busy = new Set<number>(); // partitions with an acquire or release under way
  let leaving = false;
  let stopped = false;
  let suspendedUntil = Number.NEGATIVE_INFINITY;
  /**
   * Out of the assignment for a while after losing partitions it believed it held (a paused or
   * cut-off engine must not flap back at once), unless no other live, ready engine is left to own
   * them: then it is the only one that can, and waiting would stop its funds' trading for
   * REJOIN_AFTER_LOSS_MS (red team, stop 29: the survivor of a kill -9 took 30 s instead of
   * takeover_s; a SIGTERM of the engine that had taken its funds failed every check meanwhile).
   */
  const suspended = () => performance.now() < suspendedUntil && othersReady();

  function othersReady(): boolean {
    for (const m of o.registry.members().values()) {
      if (m.instance !== me && m.ready && !m.leaving && o.registry.isLive(m.instance)) return true;
    }
    return false;
  }
  let waiters: (() => void)[] = [];

  const part = (fund: string) => partitionOf(fund, o.partitions);
  const fenced = (fund: string, epoch: number) => (fences.get(fund) ?? 0) > epoch;

  function notify(): void {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  }

  /**
   * Its own leases may be trusted: a recent heartbeat, or no other live engine to take them (a
   * lone engine too busy to heartbeat keeps serving; the journal's fencing keeps it safe anyway).
   */
  function trusted(): boolean {
    if (o.registry.fresh()) return true;
    for (const m of o.registry.members().values())
      if (m.instance !== me && o.registry.isLive(m.instance)) return false;
    return true;
  }

  /** Eligible but for trusting its own leases: it will be once its next heartbeat is acknowledged. */
  function mayTake(): boolean {
    return !leaving && !stopped && !suspended() && o.ready() && o.registry.synced();
  }

  function eligible(): boolean {
    return mayTake() && trusted();
  }

  /** Live engines other than this one that are not leaving, ready or still catching up. */
  function successors(): boolean {
    for (const m of o.registry.members().values()) {
      if (m.instance !== me && !m.leaving && o.registry.isLive(m.instance)) return true;
    }
    return false;
  }

  function candidates(): string[] {
    const out: string[] = [];
    for (const m of o.registry.members().values()) {
      if (m.instance !== me && m.ready && !m.leaving && o.registry.isLive(m.instance)) out.push(m.instance);
    }
    if (eligible()) out.push(me);
    return out;
  }

  function tick(): void {
    if (stopped || !o.registry.synced()) return;
    const live = candidates();
    const leases = o.registry.leases();
    const acquire: { p: number; rev: number | undefined }[] = [];
    for (let p = 0; p < o.partitions; p++) {
      if (busy.has(p)) continue;
      const lease = leases.get(p);
      const held = mine.get(p);
      const target = rendezvous(live, p);
      if (held) {
        if (lease && lease.revision > held.epoch) {
          mine.delete(p);
          suspendedUntil = performance.now() + REJOIN_AFTER_LOSS_MS;
          log.warn(
            { partition: p, owner: lease.owner, epoch: lease.revision, rejoin_in_ms: REJOIN_AFTER_LOSS_MS },
            "partition lost",
          );
          o.announce(`partition ${p} lost to ${lease.owner || "nobody"}`, {
            lost: String(p),
            owner: lease.owner,
          });
          notify();
        } else if (
          held.state === "active" &&
          (leaving || (eligible() && target !== undefined && target !== me))
        ) {
          void release(p, held);
        }
        continue;
      }
      if (target !== me) continue;
      const owner = lease?.owner ?? "";
      if (owner === "" || owner === me || !o.registry.isLive(owner))
        acquire.push({ p, rev: lease?.revision });
    }
    if (acquire.length > 0) void acquireAll(acquire);
  }

  async function acquireAll(list: { p: number; rev: number | undefined }[]): Promise<void> {
    for (const a of list) busy.add(a.p);
    try {
      const won: { p: number; epoch: number; from: string }[] = [];
      await Promise.all(
        list.map(async ({ p, rev }) => {
          const from = o.registry.leases().get(p)?.owner ?? "";
          const epoch = await o.registry.casLease(p, me, rev);
          if (epoch === undefined) return;
          mine.set(p, { state: "acquiring", epoch });
          won.push({ p, epoch, from });
        }),
      );
      if (won.length === 0) return;
      notify();
      // every decision journaled before the leases were taken, applied; then each fund fenced
      const info = await o.jsm.streams.info("RISK_DECISIONS");
      const target = info.state.messages === 0 ? 0 : info.state.last_seq;
      const deadline = performance.now() + CATCH_UP_MS;
      while ((o.state.cursors.get("RISK_DECISIONS") ?? 0) < target) {
        if (performance.now() > deadline) throw new Error(`journal not applied up to ${target}`);
        await delay(5);
      }
      const byPartition = new Map(won.map((w) => [w.p, w]));
      const funds = [...o.state.funds.keys()].filter((f) => f !== "_" && byPartition.has(part(f)));
      await Promise.all(
        funds.map((f) => {
          const w = byPartition.get(part(f))!;
          return o.journal.fence(f, `fence:${me}:${w.epoch}:${f}`, { "Mts-Fence": `${me} ${w.epoch}` });
        }),
      );
      const gained: number[] = [];
      for (const w of won) {
        const h = mine.get(w.p);
        if (h && h.epoch === w.epoch && h.state === "acquiring") {
          h.state = "active";
          gained.push(w.p);
        }
      }
      if (gained.length > 0) {
        const from = [...new Set(won.filter((w) => w.from !== "" && w.from !== me).map((w) => w.from))];
        log.info({ partitions: gained, funds: funds.length, from, journal: target }, "partitions owned");
        o.announce(`${me} owns partitions ${gained.join(",")}`, {
          instance: me,
          acquired: gained.join(","),
          epochs: won.map((w) => `${w.p}@${w.epoch}`).join(","),
          ...(from.length > 0 ? { from: from.join(",") } : {}),
        });
        o.onGained();
      }
    } catch (err) {
      log.error({ err }, "taking partitions failed; releasing them");
      for (const a of list) {
        const h = mine.get(a.p);
        if (h?.state === "acquiring") {
          mine.delete(a.p);
          await o.registry.casLease(a.p, "", h.epoch);
        }
      }
    } finally {
      for (const a of list) busy.delete(a.p);
      notify();
    }
  }

  async function release(p: number, h: Held): Promise<void> {
    busy.add(p);
    h.state = "releasing";
    notify();
    try {
      const deadline = performance.now() + RELEASE_DRAIN_MS;
      const inPartition = () => [...o.state.funds.keys()].filter((f) => part(f) === p);
      while (inPartition().some((f) => o.journal.pending(f) > 0) && performance.now() < deadline)
        await delay(2);
      const rev = await o.registry.casLease(p, "", h.epoch);
      if (mine.get(p) === h) mine.delete(p);
      // the lease had moved on: it was lost, not handed over
      if (rev === undefined && !leaving) suspendedUntil = performance.now() + REJOIN_AFTER_LOSS_MS;
      log.info({ partition: p, epoch: h.epoch, released: rev !== undefined }, "partition handed over");
      o.announce(`${me} released partition ${p}`, { instance: me, released: String(p) });
    } finally {
      busy.delete(p);
      notify();
    }
  }

  return {
    route(fund) {
      if (fund === undefined) return { kind: "local" };
      if (!o.registry.synced()) return { kind: "wait" }; // the ownership view is being read
      const p = part(fund);
      const h = mine.get(p);
      if (h) {
        return h.state === "active" && trusted() && !fenced(fund, h.epoch)
          ? { kind: "local" }
          : { kind: "wait" };
      }
      const owner = o.registry.leases().get(p)?.owner ?? "";
      if (owner !== "" && owner !== me) {
        const m = o.registry.members().get(owner);
        if (m && o.registry.isLive(owner)) return { kind: "remote", subject: m.subject, owner };
        // its heartbeat late in this engine's view (a busy catch-up reads it late): ask it anyway
        if (m && !eligible() && o.registry.known(owner)) {
          const unsure = candidates().length > 0 ? "wait" : "unavailable";
          return { kind: "remote", subject: m.subject, owner, unsure };
        }
      }
      // moving: wait for the engines that can take it, this one included when it only waits for its
      // own heartbeat's acknowledgement (a loaded bus); with none (a lone engine catching up), not ready
      return candidates().length > 0 || mayTake() ? { kind: "wait" } : { kind: "unavailable" };
    },
    changed: () => new Promise<void>((resolve) => waiters.push(resolve)),
    active(fund) {
      const h = mine.get(part(fund));
      return h?.state === "active" && !fenced(fund, h.epoch);
    },
    mayWrite(fund) {
      const h = mine.get(part(fund));
      return h !== undefined && !fenced(fund, h.epoch);
    },
    noteFence(fund, header) {
      const epoch = Number(header.trim().split(/\s+/)[1]);
      if (Number.isFinite(epoch) && epoch > (fences.get(fund) ?? 0)) fences.set(fund, epoch);
    },
    tick,
    suspended,
    settled() {
      if (!eligible()) return false;
      const live = candidates();
      for (let p = 0; p < o.partitions; p++) {
        if (rendezvous(live, p) === me && mine.get(p)?.state !== "active") return false;
      }
      return true;
    },
    status() {
      const owned = [...mine.entries()].filter(([, h]) => h.state === "active").sort((a, b) => a[0] - b[0]);
      return {
        owned: owned.length,
        partitions: owned.map(([p]) => p),
        epochs: Object.fromEntries(owned.map(([p, h]) => [String(p), h.epoch])),
      };
    },
    async leave(timeoutMs) {
      leaving = true;
      o.registry.setStatus({ ready: false, leaving: true });
      const deadline = performance.now() + timeoutMs;
      const released = [...mine.keys()];
      tick();
      while ((mine.size > 0 || busy.size > 0) && performance.now() < deadline) {
        await Promise.race([this.changed(), delay(20)]);
        tick();
      }
      // let the new owners take the leases (and catch up) before this engine stops forwarding; an
      // engine seen not ready for a moment (a late heartbeat) is waited for too, up to the deadline
      const others = () => candidates().length > 0 || successors();
      const taken = () =>
        released.every((p) => {
          const owner = o.registry.leases().get(p)?.owner ?? "";
          return owner !== "" && owner !== me;
        });
      while (others() && !taken() && performance.now() < deadline)
        await Promise.race([this.changed(), delay(20)]);
    },
    stop() {
      stopped = true;
      notify();
    },
  };
}
