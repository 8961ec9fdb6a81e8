/**
 * NATS faults with checks and fills flowing: a server crash and restart, a frozen server
 * (SIGSTOP/SIGCONT, as a cut link looks to a client), and a stalled consumer. The engine recovers by
 * itself, answers STATE_NOT_READY while its state is behind, serves again, and loses or doubles no fill.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import { type Engine, rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { systemClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, readStream, startTestEngine, testConfig } from "../support/engine.js";

describe("NATS faults", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let engine: Engine;

  beforeEach(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url, { timeout: 1000 });
    bus = new Bus(nc);
    engine = await startTestEngine(server.url, { flags: { "engine.max_staleness_s": 1 } });
    const e = await bus.envelope(envelope("nf", { enable_shorting: true }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
  });
  afterEach(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  /** Publishes fills and sends checks until stopped; records what was acknowledged and answered. */
  function load() {
    const acked = new Map<string, number>(); // fill_id -> quantity
    const codes = new Map<string, number>();
    let running = true;
    let n = 0;
    const fills = (async () => {
      while (running) {
        const id = `nf-${++n}`;
        const qty = (n % 3) + 1;
        try {
          await bus.fill({ fund_id: "nf", symbol: "AAPL", fill_id: id, quantity: String(qty), price: "100" });
          acked.set(id, qty);
        } catch {
          // not acknowledged: may or may not be stored; judged from the stream at the end
        }
      }
    })();
    const checks = (async () => {
      while (running) {
        try {
          const d = await bus.check(order({ fund_id: "nf", quantity: "1" }), undefined, 1000);
          const c = d.approved ? "APPROVED" : d.rejection_code;
          codes.set(c, (codes.get(c) ?? 0) + 1);
        } catch {
          codes.set("NO_REPLY", (codes.get("NO_REPLY") ?? 0) + 1);
        }
      }
    })();
    return {
      acked,
      codes,
      count: (c: string) => codes.get(c) ?? 0,
      async stop() {
        running = false;
        await Promise.all([fills, checks]);
      },
    };
  }

  /** No fill lost or doubled: the position is the sum of the distinct fills in the stream, which hold every acked one. */
  async function assertFillsExact(acked: Map<string, number>) {
    const jsm = await jetstreamManager(nc);
    for (const s of ["FILLS", "RISK_DECISIONS", "RISK_CONTROL", "OMS_ORDERS"]) {
      const last = (await jsm.streams.info(s)).state.last_seq;
      await waitFor(() => applied(engine, s, last), { timeoutMs: 20000, message: `${s} not applied` });
    }
    const stored = new Map<string, number>();
    for (const m of await readStream<{ fill_id: string; quantity: string }>(nc, "FILLS")) {
      expect(stored.has(m.data.fill_id)).toBe(false); // the stream deduped retried publishes
      stored.set(m.data.fill_id, Number(m.data.quantity));
    }
    for (const id of acked.keys()) expect(stored.has(id)).toBe(true);
    const expected = [...stored.values()].reduce((a, b) => a + b, 0);
    expect(engine.observe.book("nf", "AAPL")!.qty).toBe(String(expected));
    const rebuilt = await rebuild({
      config: testConfig(server.url),
      out: join(mkdtempSync(join(tmpdir(), "mts-nf-")), "r.sqlite"),
      clock: systemClock,
      log: silentLogger,
    });
    expect(engine.status().state_digest).toBe(rebuilt.state_digest);
  }

  it("a server crash and restart: the engine reconnects, catches up and serves again", async () => {
    const l = load();
    await waitFor(() => l.acked.size >= 200 && l.count("APPROVED") >= 50, { timeoutMs: 20000 });
    await server.kill();
    await waitFor(() => !engine.ready(), { timeoutMs: 15000 });
    await server.restart();
    const approvedBefore = l.count("APPROVED");
    await waitFor(() => engine.ready(), { timeoutMs: 20000 });
    await waitFor(() => l.count("APPROVED") > approvedBefore + 20, { timeoutMs: 20000 });
    await l.stop();
    expect([...l.codes.keys()].every((c) => ["APPROVED", "STATE_NOT_READY", "NO_REPLY"].includes(c))).toBe(
      true,
    );
    await assertFillsExact(l.acked);
  });

  it("a frozen server (stop/continue): not ready while frozen, serving again after", async () => {
    const l = load();
    await waitFor(() => l.acked.size >= 200, { timeoutMs: 20000 });
    server.pause();
    await waitFor(() => !engine.ready(), { timeoutMs: 15000 }); // staleness bound 1 s
    server.resume();
    await waitFor(() => engine.ready(), { timeoutMs: 20000 });
    const approved = l.count("APPROVED");
    await waitFor(() => l.count("APPROVED") > approved + 20, { timeoutMs: 20000 });
    await l.stop();
    await assertFillsExact(l.acked);
  });

  it("a stalled consumer is detected: lag alert, STATE_NOT_READY, then recovery", async () => {
    const jsm = await jetstreamManager(nc);
    for await (const c of jsm.consumers.list("FILLS")) await jsm.consumers.delete("FILLS", c.name);
    const before = (await readStream(nc, "RISK_CONTROL", "mts.v1.risk.alert.lag.")).length;
    const l = load();
    await waitFor(() => l.count("STATE_NOT_READY") > 0, {
      timeoutMs: 20000,
      message: "never STATE_NOT_READY",
    });
    await waitFor(
      async () => (await readStream(nc, "RISK_CONTROL", Subjects.alert("lag", "_"))).length > before,
      {
        timeoutMs: 20000,
      },
    );
    const approved = l.count("APPROVED");
    await waitFor(() => l.count("APPROVED") > approved + 20, {
      timeoutMs: 30000,
      message: "did not recover",
    });
    await l.stop();
    await assertFillsExact(l.acked);
  });
});
