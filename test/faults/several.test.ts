/**
 * Several engines, one service (CONTRACT.md "Several engines"): engine processes (`mts-risk serve`,
 * default configuration) on one nats-server. Racing orders over both check subjects approve exactly
 * N for headroom N whichever engine receives them; a kill -9 of the owner moves its funds within
 * `ownership.takeover_s`; a paused owner that wakes approves nothing for the funds it lost; a
 * rolling SIGTERM of every engine under steady load fails no check; SIGTERM with NATS gone exits.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import { statusAll } from "../../src/cli/commands/status.js";
import { partitionOf } from "../../src/ownership/partition.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { envelope } from "../support/engine.js";
import { EngineProcess, readDecisions, readSnapshot, requestStatus, waitEngineReady } from "./support.js";

const PARTITIONS = 64;
const TAKEOVER_MS = 5000; // the default ownership.takeover_s

interface EngineView {
  instance: string;
  ready: boolean;
  owned: number;
  partitions: number[];
  epochs: Record<string, number>;
  lag: number;
}

describe("several engines, one service", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let dir: string;
  let engines: EngineProcess[] = [];

  beforeEach(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url, { timeout: 2000 });
    jsm = await jetstreamManager(nc);
    dir = mkdtempSync(join(tmpdir(), "mts-several-"));
    engines = [];
    failures.length = 0;
  });
  afterEach(async () => {
    for (const e of engines) {
      e.thaw();
      if (e.running) await e.kill9();
    }
    await nc?.close();
    await server?.stop();
    if (process.env["CRASH_KEEP"] !== "1") rmSync(dir, { recursive: true, force: true });
  });

  function engine(): EngineProcess {
    const i = engines.length;
    const e = new EngineProcess({
      natsUrl: server.url,
      stateDir: join(dir, `state-${i}`),
      logFile: join(dir, `engine-${i}.log`),
    });
    engines.push(e);
    return e;
  }

  const logs = () => engines.map((e, i) => `--- engine ${i}\n${e.logTail(30)}`).join("\n");

  async function views(): Promise<EngineView[]> {
    return (await statusAll(nc, 400)) as unknown as EngineView[];
  }

  /** Until `n` engines answer, all ready, owning every partition between them, each some. */
  async function spread(n: number, timeoutMs = 30_000): Promise<EngineView[]> {
    return waitFor<EngineView[] | undefined>(
      async () => {
        const v = await views();
        const ok =
          v.length === n &&
          v.every((e) => e.ready && e.owned > 0) &&
          v.reduce((s, e) => s + e.owned, 0) === PARTITIONS;
        return ok ? v : undefined;
      },
      { timeoutMs, intervalMs: 100, message: `${n} engines sharing the partitions` },
    )
      .then((v) => v!)
      .catch((err: unknown) => {
        throw new Error(`${String(err)}\n${logs()}`);
      });
  }

  async function startEngines(n: number): Promise<EngineProcess[]> {
    const started = Array.from({ length: n }, () => engine());
    for (const e of started) e.start();
    for (const e of started) await waitEngineReady(nc, e);
    await spread(n);
    return started;
  }

  async function publishEnvelope(fund: string, over: Record<string, unknown> = {}): Promise<void> {
    const js = jetstream(nc);
    await js.publish(Subjects.envelopeUpdated(fund), JSON.stringify(envelope(fund, over)));
    const seq = (await jsm.streams.info("RISK_ENVELOPES")).state.last_seq;
    // every engine applied it
    await waitFor(
      async () => {
        const v = (await statusAll(nc, 300)) as unknown as { cursors: Record<string, number> }[];
        return v.length > 0 && v.every((s) => (s.cursors["RISK_ENVELOPES"] ?? 0) >= seq);
      },
      { timeoutMs: 10_000, message: "envelope applied everywhere" },
    );
  }

  /** 10 × 100 = 1 000 of notional per order; headroom 100 000 (10 % of 1 000 000): N = 100. */
  function raceOrder(fund: string, i: number): Record<string, unknown> {
    return {
      order_id: `${fund}-${i}`,
      idempotency_key: `${fund}-key-${i}`,
      fund_id: fund,
      broker: "paper",
      symbol: "AAPL",
      side: "BUY",
      order_type: "LIMIT",
      quantity: "10",
      limit_price: "100",
    };
  }

  const failures: string[] = [];
  async function request(order: Record<string, unknown>, subject: string, timeoutMs: number) {
    const t0 = Date.now();
    try {
      const m = await nc.request(subject, JSON.stringify(order), { timeout: timeoutMs });
      return m.json<RiskDecision>();
    } catch (err) {
      failures.push(`${new Date(t0).toISOString()} ${String(order["order_id"])} ${subject} ${String(err)}`);
      return undefined;
    }
  }

  /** The OMS: the same key again on a timeout or STATE_NOT_READY, until a decision or the deadline. */
  async function decide(
    order: Record<string, unknown>,
    subject: string,
    seen: { notReady: number; timeouts: number },
  ): Promise<RiskDecision> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const d = await request(order, subject, 15_000);
      if (d && d.rejection_code !== "STATE_NOT_READY") return d;
      if (d) seen.notReady++;
      else seen.timeouts++;
      if (Date.now() > deadline) throw new Error(`no decision for ${String(order["order_id"])}`);
      await new Promise((r) => setTimeout(r, 50)); // retry backoff
    }
  }

  /** `count` orders of `fund`, all in flight at once, alternating the two check subjects. */
  async function race(fund: string, count: number, seen = { notReady: 0, timeouts: 0 }) {
    const decisions = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        decide(raceOrder(fund, i), i % 2 === 0 ? Subjects.check : Subjects.checkFund(fund), seen),
      ),
    );
    return { decisions, approved: decisions.filter((d) => d.approved).length, seen };
  }

  it("2 engines, then a third joining mid-race: 1 000 racing orders over both subjects approve exactly N", async () => {
    await startEngines(2);
    await publishEnvelope("r1", { max_position_pct: "0.10" });
    await publishEnvelope("r2", { max_position_pct: "0.10" });

    const first = await race("r1", 1000);
    expect(first.approved).toBe(100);
    expect(first.decisions.filter((d) => !d.approved).map((d) => d.rejection_code)).toEqual(
      Array.from({ length: 900 }, () => "MAX_POSITION_EXCEEDED"),
    );
    expect(first.seen).toEqual({ notReady: 0, timeouts: 0 });

    // a third engine joins while r2's orders race: ownership moves, the headroom does not double
    const third = engine();
    third.start();
    const second = await race("r2", 1000);
    expect(second.approved).toBe(100);
    await waitEngineReady(nc, third);
    const v = await spread(3);
    expect(Math.max(...v.map((e) => e.owned))).toBeLessThanOrEqual(40); // spread: ~21 each

    // every journaled approval of the fund, across engines: exactly N
    const records = await readDecisions(jetstream(nc), jsm);
    for (const fund of ["r1", "r2"]) {
      const approvedKeys = new Set(
        records.filter((r) => r.fund_id === fund && r.decision.approved).map((r) => r.idempotency_key),
      );
      expect(approvedKeys.size).toBe(100);
    }
  }, 180_000);

  it("kill -9 of the owner under load: the other engine owns its funds within takeover_s; N holds", async () => {
    await startEngines(2);
    await publishEnvelope("k1", { max_position_pct: "0.10" });
    const p = partitionOf("k1", PARTITIONS);
    const before = await views();
    const ownerView = before.find((e) => e.partitions.includes(p))!;
    const owner = engines.find((e) => ownerView.instance.endsWith(`-${e.pid}`))!;
    const survivor = engines.find((e) => e !== owner)!;

    let answered = 0;
    const seen = { notReady: 0, timeouts: 0 };
    const all = Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        // a steady stream: order i leaves after i × 4 ms
        await new Promise((r) => setTimeout(r, i * 4));
        const d = await decide(raceOrder("k1", i), i % 2 ? Subjects.check : Subjects.checkFund("k1"), seen);
        answered++;
        return d;
      }),
    );
    await waitFor(() => answered >= 200, { timeoutMs: 30_000, intervalMs: 5, message: "load under way" });
    const killedAt = Date.now();
    await owner.kill9();
    const took = await waitFor(
      async () => {
        const s = (await views()).find((e) => e.instance.endsWith(`-${survivor.pid}`));
        return s && s.partitions.includes(p) && s.owned === PARTITIONS ? Date.now() - killedAt : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 50, message: "survivor owns every partition" },
    );
    expect(took).toBeLessThanOrEqual(TAKEOVER_MS + 1000); // the poll's own period and a loaded machine
    const decisions = await all;
    expect(decisions.filter((d) => d.approved)).toHaveLength(100);

    // the survivor's state holds every approval the dead owner journaled: the same keys replay
    const again = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => decide(raceOrder("k1", i), Subjects.check, seen)),
    );
    expect(again.filter((d) => d.approved)).toHaveLength(100);
    expect(again.every((d) => d.details["replayed"] === "true")).toBe(true);
  }, 180_000);

  it("SIGSTOP of the owner until another takes over, then SIGCONT under racing load: the woken engine approves nothing", async () => {
    await startEngines(2);
    await publishEnvelope("z1", { max_position_pct: "0.10" });
    const p = partitionOf("z1", PARTITIONS);
    const ownerView = (await views()).find((e) => e.partitions.includes(p))!;
    const owner = engines.find((e) => ownerView.instance.endsWith(`-${e.pid}`))!;
    const other = engines.find((e) => e !== owner)!;

    owner.freeze();
    await waitFor(
      async () => {
        const s = await requestStatus(nc, 500).catch(() => undefined);
        const v = s as unknown as EngineView | undefined;
        return v && v.instance.endsWith(`-${other.pid}`) && v.partitions.includes(p);
      },
      { timeoutMs: 20_000, intervalMs: 100, message: "the other engine took the partition" },
    );
    // wake the old owner and race at once: it may receive orders before it hears of its loss
    owner.thaw();
    const r = await race("z1", 1000);
    expect(r.approved).toBe(100);

    const records = await readDecisions(jetstream(nc), jsm);
    const approvals = records.filter((x) => x.fund_id === "z1" && x.decision.approved);
    expect(new Set(approvals.map((x) => x.idempotency_key)).size).toBe(100);
    expect(approvals.filter((x) => x.instance === ownerView.instance)).toEqual([]);
  }, 180_000);

  it("rolling SIGTERM of every engine under steady load: no failed check, no STATE_NOT_READY", async () => {
    await startEngines(2);
    const funds = ["g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"];
    for (const f of funds) await publishEnvelope(f); // no position limit: every order approved
    const outcome = { ok: 0, notReady: 0, failed: 0, rejected: 0 };
    let running = true;
    let n = 0;
    const load = (async () => {
      const inFlight = new Set<Promise<void>>();
      while (running) {
        const f = funds[n % funds.length]!;
        const o = raceOrder(f, n++);
        const pr = request(o, n % 2 ? Subjects.check : Subjects.checkFund(f), 5000).then((d) => {
          if (!d) outcome.failed++;
          else if (d.rejection_code === "STATE_NOT_READY") outcome.notReady++;
          else if (d.approved) outcome.ok++;
          else outcome.rejected++;
        });
        inFlight.add(pr);
        void pr.finally(() => inFlight.delete(pr));
        await new Promise((r) => setTimeout(r, 5)); // ≈ 150–200 checks/s on this machine
      }
      await Promise.all(inFlight);
    })();

    for (const e of [...engines]) {
      await waitFor(() => outcome.ok > 0, { timeoutMs: 10_000 });
      const exit = await e.stop(20_000);
      expect(exit.signal).toBeNull(); // exited by itself, not killed after the grace period
      e.start();
      await waitEngineReady(nc, e);
      await spread(2);
    }
    running = false;
    await load;
    expect(outcome, failures.slice(0, 10).join("\n")).toMatchObject({ notReady: 0, failed: 0, rejected: 0 });
    expect(outcome.ok).toBeGreaterThan(100);
  }, 240_000);

  it("SIGTERM with NATS unreachable exits within seconds, its applied state flushed", async () => {
    const [e] = await startEngines(1);
    await publishEnvelope("d1");
    const status = (await requestStatus(nc)) as unknown as { cursors: Record<string, number> };
    await server.kill(); // the bus is gone
    const t0 = Date.now();
    const exit = await e!.stop(20_000);
    const took = Date.now() - t0;
    expect(exit.signal).toBeNull();
    expect(took).toBeLessThan(8000);
    const snap = readSnapshot(join(dir, "state-0", "snapshot.sqlite"));
    expect(snap.cursors["RISK_ENVELOPES"]).toBeGreaterThanOrEqual(status.cursors["RISK_ENVELOPES"]!);
    await server.restart(); // for afterEach's stop
  }, 90_000);
});
