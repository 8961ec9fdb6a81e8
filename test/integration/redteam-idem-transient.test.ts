/**
 * Red team (idempotency, transient answers): CONTRACT.md "Gates and rejection codes": "The
 * idempotency record keeps every decision made on a schema-valid order except the `engine` gate's
 * (`NO_ENVELOPE`, `STATE_NOT_READY` are transient: a retry is evaluated afresh)", and the velocity
 * gate "counts every schema-valid order of the fund in the window, approved or not; replays
 * excluded".
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("red team: NO_ENVELOPE retries", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    engine = await startTestEngine(server.url);
  }, 30_000);
  afterAll(async () => {
    await engine?.close();
    await nc?.close();
    await server?.stop();
  });

  it("a retry after the envelope arrives is decided afresh, then replays; the id is free under another key", async () => {
    const fund = "tr-a";
    const o = order({ fund_id: fund });
    const o2 = order({ fund_id: fund });
    for (let i = 0; i < 2; i++) {
      const d = await bus.check(o);
      expect(d.rejection_code).toBe("NO_ENVELOPE");
      expect(d.details["replayed"]).toBeUndefined();
    }
    expect((await bus.check(o2)).rejection_code).toBe("NO_ENVELOPE");
    const s = await bus.envelope(envelope(fund));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
    const d = await bus.check(o);
    expect(d.approved).toBe(true);
    expect(d.details["replayed"]).toBeUndefined();
    const r = await bus.check(o);
    expect(r.approved).toBe(true);
    expect(r.details["replayed"]).toBe("true");
    // o2's id was only answered NO_ENVELOPE: not decided, so the OMS may re-key it
    const rekeyed = await bus.check({ ...o2, idempotency_key: `${String(o2["idempotency_key"])}-2` });
    expect(rekeyed.approved).toBe(true);
  });

  it("velocity counts an order once, not once per NO_ENVELOPE retry of it", async () => {
    // An OMS that retries one order while the fund's envelope is being (re)deployed: the contract
    // counts *orders* ("every schema-valid order of the fund in the window"), and a transient
    // answer is not a decision the OMS can act on ("a retry is evaluated afresh"). Expected: the
    // first real decision of that one order sees 1 order in the window (itself) and is approved
    // under max_orders 2, and one more order fits too. Before the fix: each
    // NO_ENVELOPE answer of the same order was counted, so the order itself is VELOCITY_EXCEEDED.
    const fund = "tr-v";
    const o = order({ fund_id: fund });
    for (let i = 0; i < 3; i++) expect((await bus.check(o)).rejection_code).toBe("NO_ENVELOPE");
    const s = await bus.envelope(envelope(fund, { velocity: { window_s: 300, max_orders: 2 } }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
    const d = await bus.check(o);
    const next = await bus.check(order({ fund_id: fund }));
    const third = await bus.check(order({ fund_id: fund }));
    expect([d.rejection_code, next.rejection_code, third.rejection_code]).toEqual([
      "",
      "",
      "VELOCITY_EXCEEDED",
    ]);
  });
});
