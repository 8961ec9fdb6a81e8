/**
 * `mts-risk explain` from the streams alone (the engine is stopped first): an approval, a position
 * rejection decided right after an approval the engine had not read back yet, and a halt; each
 * replayed to the same decision, though the symbol was quoted again after them. A journal record that does not follow from the streams is
 * reported as different, field by field.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";
import { run } from "../support/cli.js";

interface Explained {
  record: {
    fund_id: string;
    cursors?: Record<string, number>;
    decision: { approved: boolean; rejection_code: string };
  };
  figures: {
    nav: string;
    order: { notional: string; price: string };
    mark: { age_ms: number; fresh: boolean } | null;
    exposures: { limit: string; resulting: string; limit_notional: string; within: boolean }[];
    halts: { severity: string }[];
  };
  replay: { same: boolean; differences: { field: string; journaled: string; replayed: string }[] };
}

describe("mts-risk explain", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const ids: Record<string, string> = {};
  const clock = { now: () => Date.parse(NOW) + 250 };

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    await bus.instrument({ symbol: "AAPL", asset_class: "equity", sector: "tech" });
    await bus.quote("AAPL", "99.9", "100.1");
    await bus.fill({ quantity: "200", price: "100" }); // an existing position of 20 000
    const seq = await bus.envelope(
      envelope("alpha", {
        max_position_pct: "0.10",
        max_gross_exposure_pct: "1.0",
        price_collar_pct: "0.05",
      }),
    );
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq) && applied(engine, "FILLS", 1));
    // approval, then at once a rejection that counts the approval's reservation
    const a = order({ quantity: "500", limit_price: "100" });
    const b = order({ quantity: "400", limit_price: "100" });
    const [da, db] = await Promise.all([bus.check(a), bus.check(b)]);
    expect(da.approved).toBe(true);
    expect(db.rejection_code).toBe("MAX_POSITION_EXCEEDED");
    const h = await bus.control(Subjects.halt("alpha"), {
      fund_id: "alpha",
      severity: "MANUAL",
      reason: "desk review",
      at: NOW,
      by: "ops",
    });
    await waitFor(() => applied(engine, "RISK_CONTROL", h));
    const c = order({ quantity: "10", limit_price: "100" });
    expect((await bus.check(c)).rejection_code).toBe("FUND_HALTED");
    ids.approved = String(a.order_id);
    ids.position = String(b.order_id);
    ids.halted = String(c.order_id);
    // every decision durable, then no engine at all
    await waitFor(async () => (await readStream(nc, "RISK_DECISIONS")).length >= 3);
    // the market moves on after the decisions: the replay still finds the mark each was decided at
    // (QUOTES keeps the last 10 quotes of a symbol; with one, every replay below differs)
    await bus.quote("AAPL", "149.9", "150.1");
    await engine.close();
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
  });

  const explain = async (id: string, ...more: string[]) => {
    const r = await run(["--nats-url", server.url, "explain", id, "--fund", "alpha", ...more]);
    return r;
  };

  it("explains an approval with its figures, and the replay agrees", async () => {
    const r = await explain(ids.approved!, "--json");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const x = JSON.parse(r.out) as Explained;
    expect(x.record.decision.approved).toBe(true);
    expect(x.record.cursors?.FILLS).toBe(1);
    expect(x.record.cursors?.RISK_ENVELOPES).toBeGreaterThanOrEqual(1);
    expect(x.figures.order).toMatchObject({ price: "100", notional: "50000" });
    expect(x.figures.mark).toMatchObject({ age_ms: 250, fresh: true });
    const pos = x.figures.exposures.find((e) => e.limit === "max_position_pct");
    // 20 000 held (at the mid) + 50 000: 70 000 against 10 % of NAV
    expect(pos).toMatchObject({ resulting: "70000", within: true });
    expect(x.replay).toMatchObject({ same: true, differences: [] });
  });

  it("explains a position rejection decided before the engine read the approval back", async () => {
    const r = await explain(ids.position!, "--json");
    expect(r.code).toBe(0);
    const x = JSON.parse(r.out) as Explained;
    expect(x.record.decision.rejection_code).toBe("MAX_POSITION_EXCEEDED");
    const pos = x.figures.exposures.find((e) => e.limit === "max_position_pct");
    expect(pos).toMatchObject({ resulting: "110000", within: false });
    expect(x.replay.same).toBe(true);
  });

  it("explains a halt rejection in text", async () => {
    const r = await explain(ids.halted!);
    expect(r.code).toBe(0);
    expect(r.out).toContain("REJECTED by drawdown: FUND_HALTED");
    expect(r.out).toContain("halts: MANUAL since");
    expect(r.out).toContain("envelope: alpha@v1");
    expect(r.out).toContain("replay: the same decision");
  });

  it("says exactly what differs when a journal record does not follow from the streams", async () => {
    const recs = await readStream<Record<string, unknown>>(nc, "RISK_DECISIONS", Subjects.decision("alpha"));
    const orig = recs.find((m) => (m.data.decision as { order_id: string }).order_id === ids.position)!.data;
    const forged = {
      ...orig,
      decision_id: "forged-1",
      decision: {
        ...(orig.decision as object),
        order_id: "forged-ord",
        approved: true,
        rejecting_gate: "",
        rejection_code: "",
        reason: "approved",
        details: {},
      },
      order: { ...(orig.order as object), order_id: "forged-ord", idempotency_key: "forged-key" },
      idempotency_key: "forged-key",
    };
    await bus.js.publish(Subjects.decision("alpha"), JSON.stringify(forged));
    const r = await explain("forged-ord");
    expect(r.code).toBe(1);
    expect(r.out).toContain("replay: DIFFERENT decision");
    expect(r.out).toContain("approved: journaled true, replayed false");
    expect(r.out).toContain("rejection_code: journaled , replayed MAX_POSITION_EXCEEDED");
  });

  it("an unknown order is a negative answer", async () => {
    const r = await explain("no-such-order");
    expect(r.code).toBe(1);
    expect(r.err).toContain("no decision on order no-such-order");
  });

  it("a fund with no decision at all is the same negative answer, not a wait", async () => {
    const r = await run(["--nats-url", server.url, "explain", ids.approved!, "--fund", "no-such-fund"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`no decision on order ${ids.approved!}`);
  });
});
