/**
 * Red team (operations, explain of orders with several journaled answers): CONTRACT.md
 * "Operations": "`mts-risk explain <order_id> [--fund F]`: from the streams alone, the decision,
 * the envelope version and the stream cursors it was made at, and every gate's figures". "Gates
 * and rejection codes": NO_ENVELOPE / STATE_NOT_READY are transient ("a retry is evaluated
 * afresh"), and a schema-invalid or conflicting answer is not kept. So an order's decision is the
 * one that stands (the one a retry replays), not an earlier transient or unrecorded answer.
 */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";
import { run } from "../support/cli.js";
import { BIN, REPO } from "../faults/support.js";

describe("red team: explain an order answered more than once", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url);
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    // 1. NO_ENVELOPE (transient), then the same order under the same key approved
    const a = order({ fund_id: "exa" });
    expect((await bus.check(a)).rejection_code).toBe("NO_ENVELOPE");
    const s = await bus.envelope(envelope("exa"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
    expect((await bus.check(a)).approved).toBe(true);
    expect((await bus.check(a)).details["replayed"]).toBe("true");
    ids.afterNoEnvelope = String(a.order_id);
    // 2. SCHEMA_INVALID (not recorded), then the corrected order under the same key approved
    const b = order({ fund_id: "exa" });
    const { limit_price: _lp, ...bBad } = b;
    expect((await bus.check(bBad)).rejection_code).toBe("SCHEMA_INVALID");
    expect((await bus.check(b)).approved).toBe(true);
    ids.afterSchema = String(b.order_id);
    // 3. an order id first seen in a conflict on another order's key, then decided under its own key
    const w = order({ fund_id: "exa" });
    expect((await bus.check(w)).approved).toBe(true);
    const x = order({ fund_id: "exa" });
    const conflict = await bus.check({ ...x, idempotency_key: w.idempotency_key });
    expect(conflict.rejection_code).toBe("IDEMPOTENCY_CONFLICT");
    expect((await bus.check(x)).approved).toBe(true);
    ids.afterConflict = String(x.order_id);
    // 4. an approval replayed once; its id then sent under another key (DUPLICATE_ORDER_ID), whose
    // own retries replay that rejection twice
    const z = order({ fund_id: "exa" });
    expect((await bus.check(z)).approved).toBe(true);
    expect((await bus.check(z)).details["replayed"]).toBe("true");
    const zb = { ...z, idempotency_key: `${String(z.idempotency_key)}-b` };
    expect((await bus.check(zb)).rejection_code).toBe("DUPLICATE_ORDER_ID");
    for (let i = 0; i < 2; i++) expect((await bus.check(zb)).details["replayed"]).toBe("true");
    ids.replayedOnce = String(z.order_id);
    await waitFor(async () => (await readStream(nc, "RISK_DECISIONS")).length >= 12);
    await engine.close();
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
  });

  const explain = (id: string, ...more: string[]) =>
    run(["--nats-url", server.url, "explain", id, "--fund", "exa", ...more]);

  for (const [name, key] of [
    ["a NO_ENVELOPE answer then an approval under the same key", "afterNoEnvelope"],
    ["a SCHEMA_INVALID answer then the corrected order approved under the same key", "afterSchema"],
    ["an IDEMPOTENCY_CONFLICT on another order's key, then approved under its own key", "afterConflict"],
  ] as const) {
    it(`${name}: explain shows the approval that stands`, async () => {
      // Expected: the decision in force (approved; it is what a retry replays). Before the fix:
      // src/cli/commands/explain.ts takes made[0], the first journaled answer on the id, and
      // prints "REJECTED by engine: NO_ENVELOPE" (or schema / idempotency) for an approved order.
      const r = await explain(ids[key]!);
      const firstLine = r.out.split("\n")[0] ?? "";
      expect(firstLine, r.out + r.err).toContain("APPROVED");
      const j = await explain(ids[key]!, "--json");
      const parsed = JSON.parse(j.out) as { record: { decision: { approved: boolean } } };
      expect(parsed.record.decision.approved).toBe(true);
    });
  }

  it("the replay count of an approval counts its own replays, not those of a DUPLICATE_ORDER_ID on its id", async () => {
    // Expected: "answered again 1 time(s) as a replay" (the approval was replayed once). Before the fix
    // (defect): src/cli/commands/explain.ts counts every replayed record naming the order id, so
    // the two replays of the other key's DUPLICATE_ORDER_ID rejection are reported as replays of
    // the approval (3).
    const j = await explain(ids.replayedOnce!, "--json");
    const parsed = JSON.parse(j.out) as { replays: number; record: { decision: { approved: boolean } } };
    expect(parsed.record.decision.approved).toBe(true);
    expect(parsed.replays).toBe(1);
  });

  it("an unknown id through the bin: one line on stderr, exit 1", () => {
    const p = spawnSync(
      process.execPath,
      [BIN, "--nats-url", server.url, "explain", "never-seen", "--fund", "exa"],
      {
        cwd: REPO,
        encoding: "utf8",
        timeout: 30_000,
        env: { ...process.env, RISK_LOG__LEVEL: "warn" },
      },
    );
    expect(p.status).toBe(1);
    expect(p.stdout).toBe("");
    expect(p.stderr).toMatch(/^mts-risk: [^\n]*never-seen[^\n]*\n$/);
  });
});
