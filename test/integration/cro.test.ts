/**
 * The optional CRO veto through the bus: vetoes only above the confidence threshold; no answer
 * within the timeout passes the order and raises a `cro` alert.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";
import { run } from "../support/cli.js";

describe("CRO veto (advisory)", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let advisor: Subscription | undefined;
  let asked = 0;
  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, {
      flags: { "cro_veto.enabled": true, "cro_veto.timeout_s": 0.3, "cro_veto.confidence_threshold": 0.85 },
    });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    const seq = await bus.envelope(envelope("alpha", { max_order_qty: "1000" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
  });
  afterAll(async () => {
    if (advisor && !advisor.isClosed()) await advisor.drain();
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  function answer(reply: unknown) {
    advisor = nc.subscribe(Subjects.croVeto, {
      callback: (_e, m) => {
        asked++;
        m.respond(JSON.stringify(reply));
      },
    });
    return nc.flush();
  }

  it("vetoes when the advisor is confident above the threshold", async () => {
    await answer({ veto: true, confidence: "0.86", reason: "earnings in 5 minutes" });
    const d = await bus.check(order());
    expect(d).toMatchObject({
      approved: false,
      rejecting_gate: "cro_veto",
      rejection_code: "CRO_VETO",
      reason: "earnings in 5 minutes",
    });
    await advisor!.drain();
  });

  it("explains a vetoed order with the same decision: every gate before the CRO replayed, its answer the journaled one", async () => {
    await answer({ veto: true, confidence: "0.9", reason: "news pending" });
    const o = order();
    const d = await bus.check(o);
    expect(d).toMatchObject({ approved: false, rejection_code: "CRO_VETO", details: { confidence: "0.9" } });
    await advisor!.drain();
    const before = asked;
    const r = await waitFor(async () => {
      const x = await run([
        "--nats-url",
        server.url,
        "explain",
        String(o["order_id"]),
        "--fund",
        "alpha",
        "--json",
      ]);
      return x.code === 0 || x.out.includes('"replay"') ? x : undefined; // once the record is on the journal
    });
    if (!r) throw new Error("explain found no record");
    const x = JSON.parse(r.out) as { replay: { same: boolean; differences: unknown[]; caveats: string[] } };
    expect(x.replay.differences).toEqual([]);
    expect(x.replay.same).toBe(true);
    expect(x.replay.caveats.join(" ")).toContain("journaled one");
    expect(r.code).toBe(0);
    expect(asked).toBe(before); // the advisor is not asked again
  });

  it("passes when the confidence is exactly the threshold", async () => {
    await answer({ veto: true, confidence: "0.85", reason: "unsure" });
    expect((await bus.check(order())).approved).toBe(true);
    await advisor!.drain();
  });

  it("is not asked when a deterministic gate already rejected", async () => {
    await answer({ veto: false, confidence: "0.1" });
    const before = asked;
    const d = await bus.check(order({ quantity: "1001" }));
    expect(d.rejection_code).toBe("MAX_ORDER_QTY_EXCEEDED");
    expect(asked).toBe(before);
    await advisor!.drain();
  });

  it("decides one of two orders racing through the veto with one order id under two keys (issue 8)", async () => {
    // the advisor answers only once both are waiting on it: both passed the idempotency gate first
    const held: { respond: (b: string) => boolean }[] = [];
    advisor = nc.subscribe(Subjects.croVeto, {
      callback: (_e, m) => {
        asked++;
        held.push(m);
        if (held.length === 2)
          for (const h of held) h.respond(JSON.stringify({ veto: false, confidence: "0.1" }));
      },
    });
    await nc.flush();
    const o = order();
    const both = await Promise.all([bus.check(o), bus.check({ ...o, idempotency_key: "race-k2" })]);
    expect(both.map((d) => d.rejection_code).sort()).toEqual(["", "DUPLICATE_ORDER_ID"]);
    // and the same key racing itself is answered once, then replayed
    held.length = 0;
    const p = order();
    const same = await Promise.all([bus.check(p), bus.check({ ...p })]);
    expect(same.map((d) => d.approved)).toEqual([true, true]);
    expect(same.filter((d) => d.details["replayed"] === "true")).toHaveLength(1);
    await advisor.drain();
  });

  it("fails open with an alert when the advisor does not answer in time (or is absent)", async () => {
    advisor = nc.subscribe(Subjects.croVeto, {
      callback: () => {
        asked++; // listens, never answers
      },
    });
    await nc.flush();
    const jsm = await jetstreamManager(nc);
    const d = await bus.check(order());
    expect(d.approved).toBe(true);
    await advisor.drain();
    expect((await bus.check(order())).approved).toBe(true); // no advisor at all
    await waitFor(async () => {
      const info = await jsm.streams.info("RISK_CONTROL", { subjects_filter: "mts.v1.risk.alert.cro.>" });
      return (info.state.subjects?.[Subjects.alert("cro", "alpha")] ?? 0) >= 1;
    });
  });
});
