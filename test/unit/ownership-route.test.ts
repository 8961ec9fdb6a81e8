/**
 * Where a check goes while its partition moves (src/ownership/manager.ts `route`), and how long a
 * leaving engine waits for the others (`leave`). The registry is an in-memory view (members, leases,
 * liveness as the bus would report them); no bus is needed to decide a route.
 */
import { setTimeout as delay } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { JetStreamManager } from "@nats-io/jetstream";
import { silentLogger } from "../../src/obs/log.js";
import { createOwnership } from "../../src/ownership/manager.js";
import { partitionOf } from "../../src/ownership/partition.js";
import type { Lease, Member, Registry } from "../../src/ownership/registry.js";
import type { FundJournal } from "../../src/service/fund-journal.js";
import { createState } from "../../src/state/model.js";

const PARTITIONS = 8;
const FUND = "f1";

/** The ownership view as the registry's watch would have it. */
function view(me: string) {
  const members = new Map<string, Member>();
  const leases = new Map<number, Lease>();
  const live = new Set<string>([me]);
  let fresh = true;
  const registry: Registry = {
    start: () => Promise.resolve(),
    synced: () => true,
    members: () => members,
    leases: () => leases,
    isLive: (i) => live.has(i),
    known: (i) => members.has(i),
    fresh: () => fresh,
    setStatus: () => undefined,
    heartbeat: () => Promise.resolve(),
    casLease(p, owner, revision) {
      const cur = leases.get(p);
      if ((cur?.revision ?? undefined) !== revision) return Promise.resolve(undefined);
      const next = (revision ?? 0) + 1;
      leases.set(p, { owner, revision: next });
      return Promise.resolve(next);
    },
    stop: () => Promise.resolve(),
  };
  const member = (instance: string, s: { ready: boolean; leaving: boolean }) => {
    members.set(instance, {
      instance,
      subject: `engine.${instance}`,
      home: instance,
      at: "",
      revision: 1,
      seenAt: 0,
      ...s,
    });
    live.add(instance);
  };
  /** Its heartbeat not seen to change lately, in this engine's view. */
  const late = (instance: string) => live.delete(instance);
  return {
    registry,
    member,
    late,
    lease: (p: number, owner: string) =>
      leases.set(p, { owner, revision: (leases.get(p)?.revision ?? 0) + 1 }),
    setFresh: (v: boolean) => (fresh = v),
  };
}

function ownership(me: string, v: ReturnType<typeof view>, ready: () => boolean) {
  const journal = { pending: () => 0 } as unknown as FundJournal;
  return createOwnership({
    instance: me,
    partitions: PARTITIONS,
    registry: v.registry,
    // an acquisition applies the journal up to its last message: here an empty stream
    jsm: {
      streams: { info: () => Promise.resolve({ state: { messages: 0, last_seq: 0 } }) },
    } as unknown as JetStreamManager,
    state: createState(),
    journal,
    ready,
    log: silentLogger,
    announce: () => undefined,
    onGained: () => undefined,
  });
}

describe("ownership: a check of a partition that is moving", () => {
  const p = partitionOf(FUND, PARTITIONS);

  it("given its lease released, the only other engine leaving, and this one ready whose heartbeat is late, holds the check", () => {
    const v = view("b");
    v.member("a", { ready: false, leaving: true });
    v.lease(p, "");
    v.setFresh(false); // its own last heartbeat not acknowledged lately, and "a" is live
    const own = ownership("b", v, () => true);
    expect(own.route(FUND)).toEqual({ kind: "wait" });
  });

  it("given the same while this engine is still catching up, answers not ready at once", () => {
    const v = view("b");
    v.member("a", { ready: false, leaving: true });
    v.lease(p, "");
    const own = ownership("b", v, () => false);
    expect(own.route(FUND)).toEqual({ kind: "unavailable" });
  });

  it("given a lone engine catching up, answers not ready at once", () => {
    const v = view("b");
    const own = ownership("b", v, () => false);
    expect(own.route(FUND)).toEqual({ kind: "unavailable" });
  });

  it("given an owner whose heartbeat is late in the view of an engine catching up, asks the owner anyway", () => {
    const v = view("b");
    v.member("a", { ready: true, leaving: false });
    v.lease(p, "a");
    v.late("a"); // "b" reads the bus late while it catches up
    const own = ownership("b", v, () => false);
    // if "a" is gone after all, nobody could take its funds now: not ready
    expect(own.route(FUND)).toEqual({
      kind: "remote",
      subject: "engine.a",
      owner: "a",
      unsure: "unavailable",
    });
    v.member("c", { ready: true, leaving: false });
    expect(own.route(FUND)).toMatchObject({ kind: "remote", owner: "a", unsure: "wait" });
  });

  it("given an owner judged dead by an engine that can take over, holds the check for the takeover", () => {
    const v = view("b");
    v.member("a", { ready: true, leaving: false });
    v.lease(p, "a");
    v.late("a");
    const own = ownership("b", v, () => true);
    expect(own.route(FUND)).toEqual({ kind: "wait" });
  });

  it("given a live owner, forwards to it", () => {
    const v = view("b");
    v.member("a", { ready: true, leaving: false });
    v.lease(p, "a");
    const own = ownership("b", v, () => false);
    expect(own.route(FUND)).toEqual({ kind: "remote", subject: "engine.a", owner: "a" });
  });
});

describe("ownership: a leaving engine", () => {
  it("given the other engine seen not ready for a moment, waits until it holds the released partitions", async () => {
    const v = view("a");
    v.member("b", { ready: false, leaving: false }); // live; its heartbeat says not ready just now
    const own = ownership("a", v, () => true);
    own.tick(); // "a" alone is eligible: it takes every partition
    for (let i = 0; own.status().owned < PARTITIONS; i++) {
      if (i > 500) throw new Error("partitions not taken");
      await delay(10);
    }
    let left = false;
    const leaving = own.leave(30_000).then(() => (left = true));
    await delay(200); // many turns of its loop (every 20 ms)
    expect(left).toBe(false); // before: it stopped forwarding at once, no engine holding its funds
    for (let p = 0; p < PARTITIONS; p++) v.lease(p, "b");
    await leaving;
    expect(left).toBe(true);
    own.stop();
  });
});
