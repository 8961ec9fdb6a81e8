/**
 * Red team (issue 11): order records that left memory or that a restart left on disk ("warm" open
 * rows), and the time-driven paths that read them: the reservation TTL release of an approval
 * never acknowledged, a late acknowledgement of it (it reserves again), the idempotency window
 * ending while the order id must stay in use, max_open_orders, and whole-decision replays read
 * back from disk.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, settled, startTestEngine } from "../support/engine.js";

describe("red team: TTL, window and open-order limits with records on disk", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  const approvedCount = (ds: RiskDecision[]) => ds.filter((d) => d.approved).length;
  const id = (o: Record<string, unknown>) => String(o["order_id"]);

  it("TTL release of warm rows after a restart, then a late acknowledgement reserves again", async () => {
    const clock = manualClock(NOW);
    const fund = "ttl";
    const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-ttl-"));
    const flags = { "state.flush_interval_ms": 20, "state.commit_interval_ms": 0, "reservations.ttl_s": 60 };
    let engine = await startTestEngine(server.url, { clock, stateDir, flags });
    try {
      const s = await bus.envelope(envelope(fund, { max_position_pct: "0.01" }));
      await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
      const mk = () => order({ fund_id: fund, quantity: "10", limit_price: "100" });
      const p1 = Array.from({ length: 10 }, mk);
      expect(approvedCount(await Promise.all(p1.map((o) => bus.check(o))))).toBe(10);
      // two acknowledged (they reserve whatever the TTL), eight never acknowledged
      await bus.orderEvent("accepted", fund, id(p1[0]!));
      await bus.orderEvent("accepted", fund, id(p1[1]!));
      await settled(engine);
      await engine.flush();
      await engine.close();
      engine = await startTestEngine(server.url, { clock, stateDir, flags });
      await settled(engine);
      expect((await bus.check(mk())).rejection_code).toBe("MAX_POSITION_EXCEEDED");

      // the TTL passes: the eight unacknowledged release, the two accepted still reserve
      clock.advance(61_000);
      engine.status();
      await engine.flush();
      await engine.flush();
      const p2 = Array.from({ length: 12 }, mk);
      const d2 = await Promise.all(p2.map((o) => bus.check(o)));
      expect(approvedCount(d2)).toBe(8);

      // a late acknowledgement of one lapsed order (its record cold on disk by now): it is working at a
      // broker after all and reserves again, so one fewer fits once another approval ends
      await bus.orderEvent("accepted", fund, id(p1[5]!));
      await settled(engine);
      const approved2 = p2.filter((_, i) => d2[i]!.approved);
      await bus.orderEvent("cancelled", fund, id(approved2[0]!));
      await settled(engine);
      // used: 2 (accepted) + 1 (late accepted) + 7 (p2 left) = 10 000: nothing fits
      const d3 = await Promise.all(Array.from({ length: 4 }, mk).map((o) => bus.check(o)));
      expect(approvedCount(d3)).toBe(0);
      await bus.orderEvent("cancelled", fund, id(approved2[1]!));
      await bus.orderEvent("cancelled", fund, id(approved2[2]!));
      await settled(engine);
      const d4 = await Promise.all(Array.from({ length: 4 }, mk).map((o) => bus.check(o)));
      expect(approvedCount(d4)).toBe(2);

      // the same streams, folded from scratch (no snapshot), give the same state and answers
      await settled(engine);
      const live = engine.status().state_digest;
      await engine.close();
      engine = await startTestEngine(server.url, {
        clock,
        stateDir: mkdtempSync(join(tmpdir(), "mts-rt-ttl-rb-")),
        flags,
      });
      await settled(engine);
      expect(engine.status().state_digest).toBe(live);
      for (const o of [...p1, ...p2]) {
        const r = await bus.check(o);
        expect(r.details["replayed"]).toBe("true");
      }
      expect((await bus.check(mk())).rejection_code).toBe("MAX_POSITION_EXCEEDED");
      // and from the snapshot again (its tail now holds the fresh engine's decisions too)
      await settled(engine);
      const rebuilt = engine.status().state_digest;
      await engine.close();
      engine = await startTestEngine(server.url, { clock, stateDir, flags });
      await settled(engine);
      expect(engine.status().state_digest).toBe(rebuilt);
      expect((await bus.check(mk())).rejection_code).toBe("MAX_POSITION_EXCEEDED");
    } finally {
      await engine.close().catch(() => undefined);
    }
  }, 60_000);

  it("after the idempotency window, an ended order's id stays in use (cold order record), also after a restart", async () => {
    const clock = manualClock(NOW);
    const fund = "win";
    const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-win-"));
    const flags = {
      "state.flush_interval_ms": 20,
      "state.commit_interval_ms": 0,
      "reservations.ttl_s": 600,
      "idempotency.window_s": 5,
    };
    let engine = await startTestEngine(server.url, { clock, stateDir, flags });
    try {
      const s = await bus.envelope(envelope(fund, { max_position_pct: "0.01" }));
      await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
      const a = order({ fund_id: fund, quantity: "10", limit_price: "100" }); // filled, done
      const b = order({ fund_id: fund, quantity: "10", limit_price: "100" }); // never acknowledged
      const c = order({ fund_id: fund, quantity: "10", limit_price: "100" }); // accepted, working
      for (const o of [a, b, c]) expect((await bus.check(o)).approved).toBe(true);
      await bus.orderEvent("accepted", fund, id(a));
      await bus.fill({ fund_id: fund, order_id: id(a), quantity: "10", price: "100", fill_id: `${fund}-fa` });
      await bus.orderEvent("done", fund, id(a));
      await bus.orderEvent("accepted", fund, id(c));
      await settled(engine);
      clock.advance(6_000); // past the window, well within the TTL
      engine.status();
      await engine.flush();
      await engine.flush();
      for (const o of [a, b, c]) {
        const dup = await bus.check({ ...o, idempotency_key: `late-${id(o)}` });
        expect({ order: id(o), approved: dup.approved, code: dup.rejection_code }).toEqual({
          order: id(o),
          approved: false,
          code: "DUPLICATE_ORDER_ID",
        });
      }
      await engine.close();
      engine = await startTestEngine(server.url, { clock, stateDir, flags });
      await settled(engine);
      for (const o of [a, b, c]) {
        const dup = await bus.check({ ...o, idempotency_key: `later-${id(o)}` });
        expect({ order: id(o), approved: dup.approved, code: dup.rejection_code }).toEqual({
          order: id(o),
          approved: false,
          code: "DUPLICATE_ORDER_ID",
        });
        // the original key, same order, after its window: whatever it answers, never an approval
        const retry = await bus.check(o);
        expect({ order: id(o), approved: retry.approved }).toEqual({ order: id(o), approved: false });
      }
      // headroom: 1 000 (a's position) + 1 000 (b) + 1 000 (c): 7 fit
      const d = await Promise.all(
        Array.from({ length: 10 }, () => order({ fund_id: fund, quantity: "10", limit_price: "100" })).map(
          (o) => bus.check(o),
        ),
      );
      expect(approvedCount(d)).toBe(7);
      // the same streams folded from scratch: the same state, the same answers
      await settled(engine);
      engine.status();
      const live = engine.status().state_digest;
      await engine.close();
      engine = await startTestEngine(server.url, {
        clock,
        stateDir: mkdtempSync(join(tmpdir(), "mts-rt-win-rb-")),
        flags,
      });
      await settled(engine);
      expect(engine.status().state_digest).toBe(live);
      for (const o of [a, b, c]) {
        const dup = await bus.check({ ...o, idempotency_key: `rebuilt-${id(o)}` });
        expect({ order: id(o), code: dup.rejection_code }).toEqual({
          order: id(o),
          code: "DUPLICATE_ORDER_ID",
        });
      }
    } finally {
      await engine.close().catch(() => undefined);
    }
  }, 60_000);

  it("a lapsed approval's id stays in use past both the window and the TTL (cold row), across a restart", async () => {
    const clock = manualClock(NOW);
    const fund = "lapsed";
    const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-lapsed-"));
    const flags = {
      "state.flush_interval_ms": 20,
      "state.commit_interval_ms": 0,
      "reservations.ttl_s": 10,
      "idempotency.window_s": 5,
    };
    let engine = await startTestEngine(server.url, { clock, stateDir, flags });
    try {
      const s = await bus.envelope(envelope(fund, { max_position_pct: "0.01" }));
      await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
      const mk = () => order({ fund_id: fund, quantity: "10", limit_price: "100" });
      const x = mk();
      expect((await bus.check(x)).approved).toBe(true);
      await settled(engine);
      const dupOf = async (tag: string) =>
        (await bus.check({ ...x, idempotency_key: `${tag}-${id(x)}` })).rejection_code;
      clock.advance(6_000); // window over, TTL not
      engine.status();
      await engine.flush();
      expect(await dupOf("a")).toBe("DUPLICATE_ORDER_ID");
      clock.advance(5_000); // TTL over: lapsed, reserves nothing, leaves memory
      engine.status();
      await engine.flush();
      await engine.flush();
      expect(await dupOf("b")).toBe("DUPLICATE_ORDER_ID");
      // its headroom is free: 10 orders fit
      const d = await Promise.all(Array.from({ length: 11 }, mk).map((o) => bus.check(o)));
      expect(approvedCount(d)).toBe(10);
      await settled(engine);
      await engine.close();
      clock.advance(2_000);
      engine = await startTestEngine(server.url, { clock, stateDir, flags });
      await settled(engine);
      expect(await dupOf("c")).toBe("DUPLICATE_ORDER_ID");
      // a late acknowledgement: working at a broker after all, it reserves again; cancel one of the
      // ten and still nothing fits
      await bus.orderEvent("accepted", fund, id(x));
      const tenth = d.find((r) => r.approved)!;
      await bus.orderEvent("cancelled", fund, tenth.order_id);
      await settled(engine);
      expect((await bus.check(mk())).rejection_code).toBe("MAX_POSITION_EXCEEDED");
    } finally {
      await engine.close().catch(() => undefined);
    }
  }, 60_000);

  it("max_open_orders counts open orders left on disk by a restart, and a crash", async () => {
    const clock = manualClock(NOW);
    const fund = "open";
    const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-open-"));
    const flags = { "state.flush_interval_ms": 20, "state.commit_interval_ms": 1000 };
    let engine = await startTestEngine(server.url, { clock, stateDir, flags });
    try {
      const s = await bus.envelope(envelope(fund, { max_open_orders: 5 }));
      await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
      const mk = () => order({ fund_id: fund, quantity: "1", limit_price: "100" });
      const p1 = Array.from({ length: 3 }, mk);
      expect(approvedCount(await Promise.all(p1.map((o) => bus.check(o))))).toBe(3);
      await bus.orderEvent("accepted", fund, id(p1[0]!));
      await settled(engine);
      await engine.close();
      engine = await startTestEngine(server.url, { clock, stateDir, flags });
      await settled(engine);
      const d2 = await Promise.all(Array.from({ length: 5 }, mk).map((o) => bus.check(o)));
      expect(approvedCount(d2)).toBe(2);
      for (const d of d2.filter((x) => !x.approved))
        expect(d.rejection_code).toBe("MAX_OPEN_ORDERS_EXCEEDED");
      // one ends (read from its warm row), crash before any commit, restart: 1 fits
      await bus.orderEvent("cancelled", fund, id(p1[1]!));
      await settled(engine);
      await engine.abort();
      engine = await startTestEngine(server.url, { clock, stateDir, flags });
      await settled(engine);
      const d3 = await Promise.all(Array.from({ length: 4 }, mk).map((o) => bus.check(o)));
      expect(approvedCount(d3)).toBe(1);
    } finally {
      await engine.close().catch(() => undefined);
    }
  }, 60_000);

  it("a replay read back from disk is the whole original decision (rejection details included)", async () => {
    const clock = manualClock(NOW);
    const fund = "whole";
    const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-whole-"));
    const flags = { "state.flush_interval_ms": 20, "state.commit_interval_ms": 0 };
    let engine = await startTestEngine(server.url, { clock, stateDir, flags });
    try {
      const s = await bus.envelope(envelope(fund, { max_position_pct: "0.01" }));
      await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
      const ok = order({ fund_id: fund, quantity: "10", limit_price: "100" });
      const big = order({ fund_id: fund, quantity: "1000", limit_price: "100" });
      const first = [await bus.check(ok), await bus.check(big)];
      expect(first.map((d) => d.rejection_code)).toEqual(["", "MAX_POSITION_EXCEEDED"]);
      const hot = [await bus.check(ok), await bus.check(big)];
      await settled(engine);
      await engine.flush();
      await engine.flush();
      const cold = [await bus.check(ok), await bus.check(big)];
      await engine.close();
      engine = await startTestEngine(server.url, { clock, stateDir, flags });
      await settled(engine);
      const restarted = [await bus.check(ok), await bus.check(big)];
      for (const set of [hot, cold, restarted]) {
        for (let i = 0; i < 2; i++) {
          expect(set[i]).toEqual({ ...first[i], details: { ...first[i]!.details, replayed: "true" } });
        }
      }
    } finally {
      await engine.close().catch(() => undefined);
    }
  }, 60_000);
});
