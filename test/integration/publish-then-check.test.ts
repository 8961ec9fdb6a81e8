/**
 * A client publishes to a stream, waits for the JetStream acknowledgement, then sends a check: the
 * decision reflects what it published, for every stream a check depends on (halts and resumes,
 * envelopes, fills, instruments, OMS order events, quotes), also with a burst of quotes stored
 * alongside. Two clients' messages have no order on the bus (the stream delivers a stored message
 * while the check travels), so a scenario may miss a few rounds; a systematic delay in how the
 * engine follows a stream (as stop 26's paced quote lane had: test/integration/quote-then-check)
 * misses most of them. The bound is rounds / 10. (Stop 27, from a helper's red-team pass.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine, decidedAt } from "../support/engine.js";

const ROUNDS = Number(process.env["PUBLISH_CHECK_ROUNDS"] ?? 100);
const BOUND = ROUNDS / 10;

const brief = (d: RiskDecision): string =>
  `${d.approved ? "APPROVED" : `${d.rejection_code}`} ${d.envelope_id} ${d.reason}`;

/** Says which rounds missed (the bus's race: a few at most), nothing when none did. */
function report(name: string, misses: string[], extra = ""): void {
  if (misses.length === 0) return;
  console.log(`${name}: ${misses.length} of ${ROUNDS} rounds missed ${extra}`);
  console.log(misses.slice(0, 10).join("\n"));
}

describe("publish, await the ack, then check", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let nc2: NatsConnection;
  let bus: Bus;
  let bus2: Bus;

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url);
    nc = await connectTest(server.url);
    nc2 = await connectTest(server.url);
    bus = new Bus(nc);
    bus2 = new Bus(nc2);
  });
  afterAll(async () => {
    await nc?.close();
    await nc2?.close();
    await engine?.close();
    await server?.stop();
  });

  async function setup(fund: string, over: Record<string, unknown> = {}): Promise<void> {
    const seq = await bus.envelope(envelope(fund, over));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
  }

  it("quote baseline (calibration): a new mark then a collar check", async () => {
    await setup("rq", { price_collar_pct: "0.01" });
    const misses: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const px = 100 + (i % 2) * 50;
      await bus.quote("RQ", String(px - 0.01), String(px + 0.01), new Date().toISOString());
      const d = await bus.check(
        order({ fund_id: "rq", symbol: "RQ", limit_price: String(px), quantity: "1" }),
      );
      if (!d.approved) misses.push(`${i}: ${brief(d)}`);
    }
    report("quote", misses);
    expect(misses.length, misses.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("MANUAL halt, then a check: FUND_HALTED (alternating with resume → approved)", async () => {
    await setup("rh");
    const approvedWhileHalted: string[] = [];
    const refusedAfterResume: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const at = new Date().toISOString();
      const hseq = await bus.control(Subjects.halt("rh"), {
        fund_id: "rh",
        severity: "MANUAL",
        reason: `r${i}`,
        at,
        by: "ops",
      });
      const o1 = order({ fund_id: "rh", quantity: "1" });
      const d1 = await bus.check(o1);
      if (d1.approved || d1.rejection_code !== "FUND_HALTED")
        approvedWhileHalted.push(
          `${i}: ${brief(d1)} | halt seq ${hseq}, decided at RISK_CONTROL ${(await decidedAt(nc, "rh", o1["order_id"], "RISK_CONTROL")) ?? "?"}`,
        );
      await bus.control(Subjects.resume("rh"), { fund_id: "rh", operator: "ops", reason: `r${i}`, at });
      const d2 = await bus.check(order({ fund_id: "rh", quantity: "1" }));
      if (!d2.approved) refusedAfterResume.push(`${i}: ${brief(d2)}`);
    }
    report("halt→check", approvedWhileHalted);
    report("resume→check", refusedAfterResume);
    expect(approvedWhileHalted.length, approvedWhileHalted.join("\n")).toBeLessThanOrEqual(BOUND);
    expect(refusedAfterResume.length, refusedAfterResume.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("MANUAL halt acknowledged together with a burst of quotes (busy bus), then a check", async () => {
    await setup("rhb");
    const approvedWhileHalted: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const at = new Date().toISOString();
      const others = Array.from({ length: 20 }, (_, k) => bus.quote(`HB${k}`, "1", "1.1", at));
      const halt = bus.control(Subjects.halt("rhb"), {
        fund_id: "rhb",
        severity: "MANUAL",
        reason: `r${i}`,
        at,
        by: "ops",
      });
      await Promise.all([...others, halt]);
      const d1 = await bus.check(order({ fund_id: "rhb", quantity: "1" }));
      if (d1.approved || d1.rejection_code !== "FUND_HALTED") approvedWhileHalted.push(`${i}: ${brief(d1)}`);
      await bus.control(Subjects.resume("rhb"), { fund_id: "rhb", operator: "ops", reason: `r${i}`, at });
      const last = (await (await engine.js.jetstreamManager()).streams.info("RISK_CONTROL")).state.last_seq;
      await waitFor(() => applied(engine, "RISK_CONTROL", last));
    }
    report("busy bus: halt→check", approvedWhileHalted);
    expect(approvedWhileHalted.length, approvedWhileHalted.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("a fill acknowledged together with a burst of quotes (busy bus), then a check over the limit", async () => {
    await setup("rfb", { max_position_pct: "0.10" });
    const approvedOver: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const sym = `FB${i}`;
      const at = new Date().toISOString();
      const others = Array.from({ length: 20 }, (_, k) => bus.quote(`HB${k}`, "1", "1.1", at));
      const fill = bus.fill({
        fund_id: "rfb",
        symbol: sym,
        side: "BUY",
        quantity: "900",
        price: "100",
        timestamp: at,
      });
      await Promise.all([...others, fill]);
      const d = await bus.check(order({ fund_id: "rfb", symbol: sym, quantity: "200", limit_price: "100" }));
      if (d.approved || d.rejection_code !== "MAX_POSITION_EXCEEDED") approvedOver.push(`${i}: ${brief(d)}`);
    }
    report("busy bus: fill→check", approvedOver);
    expect(approvedOver.length, approvedOver.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("MANUAL halt from an operator connection, check from another (OMS) connection", async () => {
    await setup("rh2");
    const approvedWhileHalted: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const at = new Date().toISOString();
      await bus2.control(Subjects.halt("rh2"), {
        fund_id: "rh2",
        severity: "MANUAL",
        reason: `r${i}`,
        at,
        by: "ops",
      });
      const d1 = await bus.check(order({ fund_id: "rh2", quantity: "1" }));
      if (d1.approved || d1.rejection_code !== "FUND_HALTED") approvedWhileHalted.push(`${i}: ${brief(d1)}`);
      await bus2.control(Subjects.resume("rh2"), { fund_id: "rh2", operator: "ops", reason: `r${i}`, at });
      // the resume is not what this scenario measures: wait for it
      const last = (await (await engine.js.jetstreamManager()).streams.info("RISK_CONTROL")).state.last_seq;
      await waitFor(() => applied(engine, "RISK_CONTROL", last));
    }
    report("halt(other conn)→check", approvedWhileHalted);
    expect(approvedWhileHalted.length, approvedWhileHalted.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("an envelope lowering max_order_qty (new version), then a check over it", async () => {
    await setup("re", { version: 1, max_order_qty: "1000" });
    const approvedOverNew: string[] = [];
    const refusedUnderNew: string[] = [];
    let v = 1;
    for (let i = 0; i < ROUNDS; i++) {
      v++;
      const low = i % 2 === 0;
      const eseq = await bus.envelope(envelope("re", { version: v, max_order_qty: low ? "10" : "1000" }));
      const o = order({ fund_id: "re", quantity: "100" });
      const d = await bus.check(o);
      if (low && (d.approved || d.rejection_code !== "MAX_ORDER_QTY_EXCEEDED"))
        approvedOverNew.push(
          `${i} v${v}: ${brief(d)} | envelope seq ${eseq}, decided at RISK_ENVELOPES ${(await decidedAt(nc, "re", o["order_id"], "RISK_ENVELOPES")) ?? "?"}`,
        );
      if (!low && !d.approved) refusedUnderNew.push(`${i} v${v}: ${brief(d)}`);
    }
    report("envelope(lower)→check", approvedOverNew);
    report("envelope(raise)→check", refusedUnderNew);
    expect(approvedOverNew.length, approvedOverNew.join("\n")).toBeLessThanOrEqual(BOUND);
    expect(refusedUnderNew.length, refusedUnderNew.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("an envelope lowering max_position_pct (new version), then a check over it", async () => {
    await setup("rp", { version: 1, max_position_pct: "0.10" });
    const approvedOverNew: string[] = [];
    let v = 1;
    for (let i = 0; i < ROUNDS; i++) {
      v++;
      // lowered to 1 % (10 000) from 10 % (100 000); the order is 50 000 in a fresh symbol
      await bus.envelope(envelope("rp", { version: v, max_position_pct: "0.01" }));
      const d = await bus.check(
        order({ fund_id: "rp", symbol: `P${i}`, quantity: "500", limit_price: "100" }),
      );
      if (d.approved || d.rejection_code !== "MAX_POSITION_EXCEEDED")
        approvedOverNew.push(`${i} v${v}: ${brief(d)}`);
      v++;
      await bus.envelope(envelope("rp", { version: v, max_position_pct: "0.10" }));
      const last = (await (await engine.js.jetstreamManager()).streams.info("RISK_ENVELOPES")).state.last_seq;
      await waitFor(() => applied(engine, "RISK_ENVELOPES", last));
    }
    report("envelope(lower position pct)→check", approvedOverNew);
    expect(approvedOverNew.length, approvedOverNew.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("a fill that uses up the position limit, then a check over it", async () => {
    // 10 % of 1 000 000 = 100 000 per symbol; the fill takes 90 000, the order 20 000 more
    await setup("rf", { max_position_pct: "0.10" });
    const approvedOver: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const sym = `F${i}`;
      const fseq = await bus.fill({
        fund_id: "rf",
        symbol: sym,
        side: "BUY",
        quantity: "900",
        price: "100",
        timestamp: new Date().toISOString(),
      });
      const o = order({ fund_id: "rf", symbol: sym, quantity: "200", limit_price: "100" });
      const d = await bus.check(o);
      if (d.approved || d.rejection_code !== "MAX_POSITION_EXCEEDED")
        approvedOver.push(
          `${i}: ${brief(d)} | fill seq ${fseq}, decided at FILLS ${(await decidedAt(nc, "rf", o["order_id"], "FILLS")) ?? "?"}`,
        );
    }
    report("fill→check", approvedOver);
    expect(approvedOver.length, approvedOver.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("a fill of a long position, then a sale of it (not a short sale)", async () => {
    await setup("rs", { enable_shorting: false });
    const refused: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const sym = `L${i}`;
      await bus.fill({
        fund_id: "rs",
        symbol: sym,
        side: "BUY",
        quantity: "100",
        price: "100",
        timestamp: new Date().toISOString(),
      });
      const d = await bus.check(
        order({ fund_id: "rs", symbol: sym, side: "SELL", quantity: "100", limit_price: "100" }),
      );
      if (!d.approved) refused.push(`${i}: ${brief(d)}`);
    }
    report("fill(long)→sell", refused);
    expect(refused.length, refused.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("an instrument update (shortable false), then a short sale: LOCATE_REQUIRED", async () => {
    await setup("ri", { enable_shorting: true });
    const approvedShort: string[] = [];
    const refusedShortable: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const shortable = i % 2 === 1;
      const iseq = await bus.instrument({ symbol: "RI", asset_class: "equity", shortable });
      const o = order({ fund_id: "ri", symbol: "RI", side: "SELL", quantity: "1" });
      const d = await bus.check(o);
      if (!shortable && (d.approved || d.rejection_code !== "LOCATE_REQUIRED"))
        approvedShort.push(
          `${i}: ${brief(d)} | refdata seq ${iseq}, decided at REFDATA ${(await decidedAt(nc, "ri", o["order_id"], "REFDATA")) ?? "?"}`,
        );
      if (shortable && !d.approved) refusedShortable.push(`${i}: ${brief(d)}`);
    }
    report("instrument(shortable=false)→short", approvedShort);
    report("instrument(shortable=true)→short", refusedShortable);
    expect(approvedShort.length, approvedShort.join("\n")).toBeLessThanOrEqual(BOUND);
    expect(refusedShortable.length, refusedShortable.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("an instrument's first refdata (shortable false) on a fresh symbol, then a short sale", async () => {
    await setup("ri2", { enable_shorting: true });
    const approvedShort: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // first seen as shortable, then updated to not shortable
      await bus.instrument({ symbol: `RJ${i}`, asset_class: "equity", shortable: true });
      await waitFor(() => engine.observe.instrument(`RJ${i}`));
      await bus.instrument({ symbol: `RJ${i}`, asset_class: "equity", shortable: false });
      const d = await bus.check(order({ fund_id: "ri2", symbol: `RJ${i}`, side: "SELL", quantity: "1" }));
      if (d.approved || d.rejection_code !== "LOCATE_REQUIRED") approvedShort.push(`${i}: ${brief(d)}`);
    }
    report("instrument(true→false)→short", approvedShort);
    expect(approvedShort.length, approvedShort.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("a cancel (OMS_ORDERS), then a check that needs the released headroom", async () => {
    // 100 000 per symbol; each order 80 000: the second fits only once the first is cancelled
    await setup("rc", { max_position_pct: "0.10" });
    const refused: string[] = [];
    const setupFailures: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const sym = `C${i}`;
      const first = order({ fund_id: "rc", symbol: sym, quantity: "800", limit_price: "100" });
      const d0 = await bus.check(first);
      if (!d0.approved) {
        setupFailures.push(`${i}: ${brief(d0)}`);
        continue;
      }
      await bus.orderEvent("accepted", "rc", String(first["order_id"]), new Date().toISOString());
      await bus.orderEvent("cancelled", "rc", String(first["order_id"]), new Date().toISOString());
      const d = await bus.check(order({ fund_id: "rc", symbol: sym, quantity: "800", limit_price: "100" }));
      if (!d.approved) refused.push(`${i}: ${brief(d)}`);
    }
    report("cancel→check", refused, `setupFailures=${setupFailures.length}`);
    expect(setupFailures, setupFailures.join("\n")).toEqual([]);
    expect(refused.length, refused.join("\n")).toBeLessThanOrEqual(BOUND);
  });

  it("a cancel then a check, with no 'accepted' before (never acknowledged)", async () => {
    await setup("rc2", { max_position_pct: "0.10" });
    const refused: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const sym = `D${i}`;
      const first = order({ fund_id: "rc2", symbol: sym, quantity: "800", limit_price: "100" });
      const d0 = await bus.check(first);
      expect(d0.approved, brief(d0)).toBe(true);
      await bus.orderEvent("cancelled", "rc2", String(first["order_id"]), new Date().toISOString());
      const d = await bus.check(order({ fund_id: "rc2", symbol: sym, quantity: "800", limit_price: "100" }));
      if (!d.approved) refused.push(`${i}: ${brief(d)}`);
    }
    report("cancel(no accept)→check", refused);
    expect(refused.length, refused.join("\n")).toBeLessThanOrEqual(BOUND);
  });
});
