/**
 * QUALITY.md "Reliability", Cluster: three nats-server nodes, the engine's streams replicated 3
 * times, `kill -9` one node under load (fills published with msgID and checks, from a client
 * attached to all three nodes). Twice: the node the engine is attached to, then another one; each
 * time the victim is made leader of FILLS and RISK_DECISIONS first. No acknowledged fill or
 * approved decision is lost, no fill is stored twice, no idempotency key is approved twice, checks
 * are approved again within seconds, and the engine's state digest equals a rebuild from the two
 * surviving nodes. The first victim restarts and rejoins. MTS_TEST_LOG=info shows the engine's log.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager, type JetStreamManager, type PubAck } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { CONSUMED_STREAMS, Subjects, streamCatalog } from "../../src/contract/subjects.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { type Engine, rebuild } from "../../src/engine/index.js";
import { createLogger, silentLogger } from "../../src/obs/log.js";
import { manualClock } from "../../src/time/clock.js";
import {
  type ClusterNode,
  type TestCluster,
  connectedNode,
  moveStreamLeader,
  readAll,
  startTestCluster,
  streamLeader,
  waitStreamCurrent,
} from "../support/cluster.js";
import { Bus, NOW, applied, envelope, order, startTestEngine, testConfig } from "../support/engine.js";
import { connectTest, waitFor } from "../support/nats.js";

/** MTS_TEST_LOG=info (or debug, …) shows the engine's log; silent by default. */
const log = process.env["MTS_TEST_LOG"] ? createLogger({ level: process.env["MTS_TEST_LOG"] }) : silentLogger;

const FILL_WORKERS = 4;
const CHECK_WORKERS = 4;
const REQUEST_TIMEOUT_MS = 2000;
/** Pause between one worker's fills: some hundreds a second in all, not a flood that starves the servers. */
const FILL_PACE_MS = 5;
/** Back-off after a failed attempt, as an OMS or broker adapter would (not a wait for a condition). */
const RETRY_BACKOFF_MS = 50;
/**
 * How long checks may stay unanswered after the kill: the surviving nodes elect new stream
 * leaders and the engine's pending journal writes land. Observed 4.9–13.4 s on 2 cores, once over
 * 20 s with the other core busy (three servers, the engine and the test on two cores); the bound
 * is what "checks keep answering" may take there, not a latency target.
 */
const RECOVERY_DEADLINE_MS = 30_000;

type Outcome = "approved" | "replay" | "rejected" | "not_ready" | "timeout" | "no_responders" | "error";
const TRANSIENT: ReadonlySet<Outcome> = new Set(["not_ready", "timeout", "no_responders", "error"]);

interface Attempt {
  key: string;
  orderId: string;
  sentAt: number;
  doneAt: number;
  outcome: Outcome;
  code?: string;
}

interface DecisionRec {
  decision_id: string;
  instance: string;
  fund_id: string;
  idempotency_key?: string;
  replayed: boolean;
  decision: RiskDecision;
  /** Its journal message's stream sequence (added when read). */
  seq?: number;
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const t of items) out.set(key(t), [...(out.get(key(t)) ?? []), t]);
  return out;
}

function byOutcome(as: readonly Attempt[]): Record<string, number> {
  return Object.fromEntries([...groupBy(as, (a) => a.outcome)].map(([k, v]) => [k, v.length]));
}

function classify(d: RiskDecision): Outcome {
  if (d.approved) return d.details["replayed"] === "true" ? "replay" : "approved";
  return d.rejection_code === "STATE_NOT_READY" ? "not_ready" : "rejected";
}

function errorOutcome(err: unknown): Outcome {
  const code = (err as { code?: unknown }).code;
  const text = `${typeof code === "string" ? code : ""} ${String(err)}`;
  if (/timeout/i.test(text)) return "timeout";
  if (/503|no responders/i.test(text)) return "no_responders";
  return "error";
}

describe("3-node JetStream cluster: kill -9 a node under load", () => {
  let cluster: TestCluster;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);
  const t0 = Date.now();

  /** Every consumed stream applied by the engine up to the last sequence it has now. */
  async function settled(e: Engine, timeoutMs = 30_000): Promise<void> {
    const jsm = await e.js.jetstreamManager();
    for (const s of CONSUMED_STREAMS) {
      const last = await waitFor(async () => (await jsm.streams.info(s)).state.last_seq + 1, {
        timeoutMs,
        message: `${s}: no stream info`,
      });
      await waitFor(() => applied(e, s, last - 1), {
        timeoutMs,
        message: `${s} not applied up to ${last - 1}`,
      });
    }
  }

  beforeAll(async () => {
    cluster = await startTestCluster();
    engine = await startTestEngine(cluster.url, { clock, log, flags: { "nats.replicas": 3 } });
    // The load client: all three URLs, reconnecting forever.
    nc = await connectTest(cluster.url, { maxReconnectAttempts: -1, name: "cluster-load" });
    bus = new Bus(nc);
    const seq = await bus.envelope(envelope("alpha"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq), { message: "envelope not applied" });
  });

  afterAll(async () => {
    await nc?.close().catch(() => undefined);
    await engine?.close().catch(() => undefined);
    await cluster?.stop();
  });

  it("creates every stream with 3 replicas", async () => {
    const jsm = await jetstreamManager(nc);
    for (const spec of streamCatalog()) {
      const info = await waitStreamCurrent(jsm, spec.name, 2);
      expect(info.config.num_replicas, spec.name).toBe(3);
      expect(info.cluster?.replicas?.length, spec.name).toBe(2);
      const peers = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((p) => p.name)].sort();
      expect(peers, spec.name).toEqual(["n1", "n2", "n3"]);
    }
  });

  /**
   * Make `target` the leader of FILLS and RISK_DECISIONS, load the cluster with fills and checks,
   * `kill -9` it, and prove nothing acknowledged was lost and the engine answers again.
   */
  async function killUnderLoad(target: ClusterNode, label: string): Promise<void> {
    const jsm: JetStreamManager = await jetstreamManager(nc);
    const ledFills = await moveStreamLeader(nc, "FILLS", target.name);
    const ledDecisions = await moveStreamLeader(nc, "RISK_DECISIONS", target.name);

    // ---- load: fills with msgID, and checks, from a client attached to all three nodes
    let stop = false;
    let killAt = Number.POSITIVE_INFINITY;
    const acked = new Map<string, PubAck>();
    const unacked = new Map<string, { subject: string; body: string }>();
    let fillErrors = 0;
    let fillErrorsAfterKill = 0;
    let fillN = 0;
    const fillWorker = async (): Promise<void> => {
      while (!stop) {
        const n = ++fillN;
        const fillId = `cf-${label}-${n}`;
        const subject = Subjects.fill("alpha", "AAPL");
        const body = JSON.stringify({
          fill_id: fillId,
          order_id: `ext-${label}-${n}`,
          fund_id: "alpha",
          broker: "paper",
          symbol: "AAPL",
          side: n % 2 === 0 ? "SELL" : "BUY",
          quantity: "1",
          price: "100",
          fees: "0",
          timestamp: NOW,
        });
        const sentAt = Date.now();
        try {
          const ack = await bus.js.publish(subject, body, { msgID: fillId, timeout: REQUEST_TIMEOUT_MS });
          acked.set(fillId, ack);
          await delay(FILL_PACE_MS);
        } catch {
          fillErrors++;
          if (sentAt >= killAt) fillErrorsAfterKill++;
          unacked.set(fillId, { subject, body });
          await delay(RETRY_BACKOFF_MS);
        }
      }
    };

    const attempts: Attempt[] = [];
    const retryQueue: Record<string, unknown>[] = [];
    const checkWorker = async (): Promise<void> => {
      while (!stop) {
        const o = retryQueue.shift() ?? order({ fund_id: "alpha", symbol: "MSFT", quantity: "1" });
        const a: Attempt = {
          key: String(o["idempotency_key"]),
          orderId: String(o["order_id"]),
          sentAt: Date.now(),
          doneAt: 0,
          outcome: "error",
        };
        try {
          const d = await bus.check(o, Subjects.check, REQUEST_TIMEOUT_MS);
          a.outcome = classify(d);
          a.code = d.rejection_code;
        } catch (err) {
          a.outcome = errorOutcome(err);
        }
        a.doneAt = Date.now();
        attempts.push(a);
        if (TRANSIENT.has(a.outcome)) {
          retryQueue.push(o); // an OMS retries with the same idempotency key
          await delay(RETRY_BACKOFF_MS);
        }
      }
    };

    const workers = [
      ...Array.from({ length: FILL_WORKERS }, fillWorker),
      ...Array.from({ length: CHECK_WORKERS }, checkWorker),
    ];
    const okAfter = (t: number) => attempts.filter((a) => a.sentAt >= t && a.outcome === "approved").length;
    const setup = {
      scenario: label,
      killed: target.name,
      engine_was_attached: connectedNode(engine.nc) === target.name,
      killed_led_fills: ledFills,
      killed_led_decisions: ledDecisions,
      before_kill: { fills_acked: 0, checks_approved: 0 },
    };
    let recoveredAt = Number.NaN;
    try {
      await waitFor(() => acked.size >= 300 && okAfter(0) >= 100, {
        timeoutMs: 20_000,
        message: "load did not get going",
      });
      // ---- kill -9 in the middle of it
      setup.before_kill = { fills_acked: acked.size, checks_approved: okAfter(0) };
      killAt = Date.now();
      await target.kill();
      recoveredAt = await waitFor(
        () => attempts.find((a) => a.sentAt >= killAt && a.outcome === "approved")?.doneAt ?? 0,
        { timeoutMs: RECOVERY_DEADLINE_MS, intervalMs: 10, message: "no check approved after the kill" },
      );
      // Keep the load on until the cluster of two has carried a good deal more of it.
      const ackedAtRecovery = acked.size;
      await waitFor(() => okAfter(recoveredAt) >= 100 && acked.size >= ackedAtRecovery + 300, {
        timeoutMs: 30_000,
        message: "load did not continue after recovery",
      });
    } catch (err) {
      const killed = Number.isFinite(killAt);
      const outcomes = byOutcome(attempts.filter((a) => !killed || a.sentAt >= killAt));
      const when = killed ? "since the kill" : "so far (no kill yet)";
      throw new Error(`${String(err)}; check outcomes ${when}: ${JSON.stringify(outcomes)}`, { cause: err });
    } finally {
      stop = true;
      await Promise.all(workers);
    }

    // ---- every fill and check gets its definite outcome, retried with the same msgID / key
    let republished = 0;
    let republishedDuplicates = 0;
    await waitFor(
      async () => {
        for (const [fillId, f] of [...unacked]) {
          const ack = await bus.js.publish(f.subject, f.body, { msgID: fillId, timeout: REQUEST_TIMEOUT_MS });
          acked.set(fillId, ack);
          republished++;
          if (ack.duplicate) republishedDuplicates++; // stored the first time; only the ack was lost
          unacked.delete(fillId);
        }
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 100, message: "unacknowledged fills could not be republished" },
    );
    await waitFor(
      async () => {
        for (const o of [...retryQueue]) {
          const a: Attempt = {
            key: String(o["idempotency_key"]),
            orderId: String(o["order_id"]),
            sentAt: Date.now(),
            doneAt: 0,
            outcome: "error",
          };
          try {
            const d = await bus.check(o, Subjects.check, REQUEST_TIMEOUT_MS);
            a.outcome = classify(d);
            a.code = d.rejection_code;
          } catch (err) {
            a.outcome = errorOutcome(err);
          }
          a.doneAt = Date.now();
          attempts.push(a);
          if (TRANSIENT.has(a.outcome)) return false;
          retryQueue.splice(retryQueue.indexOf(o), 1);
        }
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 100, message: "retried checks did not get a decision" },
    );

    // ---- the streams, read through the two surviving nodes
    const fills = await readAll<{ fill_id: string }>(nc, "FILLS");
    const stored = new Map<string, number>();
    for (const m of fills) stored.set(m.data.fill_id, (stored.get(m.data.fill_id) ?? 0) + 1);
    const lostFills = [...acked.keys()].filter((id) => !stored.has(id));
    const twiceStored = [...stored].filter(([, n]) => n > 1).map(([id]) => id);
    const idAtSeq = new Map(fills.map((m) => [m.seq, m.data.fill_id]));
    const ackSeqMismatch = [...acked].filter(([id, a]) => idAtSeq.get(a.seq) !== id);

    // a journal message is one record or, with Mts-Batch, an array of them (a fence is an empty one)
    const records = (await readAll<DecisionRec | DecisionRec[]>(nc, "RISK_DECISIONS")).flatMap((m) =>
      (Array.isArray(m.data) ? m.data : [m.data]).map((r) => ({ ...r, seq: m.seq })),
    );
    const journaledApprovals = new Map<string, DecisionRec[]>(); // idempotency key → approvals
    for (const r of records) {
      if (!r.decision.approved || r.replayed || r.idempotency_key === undefined) continue;
      journaledApprovals.set(r.idempotency_key, [...(journaledApprovals.get(r.idempotency_key) ?? []), r]);
    }
    const approvedReplies = attempts.filter((a) => a.outcome === "approved" || a.outcome === "replay");
    const lostDecisions = approvedReplies.filter(
      (a) => !(journaledApprovals.get(a.key) ?? []).some((r) => r.decision.order_id === a.orderId),
    );
    const repliedTwice = [
      ...groupBy(
        attempts.filter((a) => a.outcome === "approved"),
        (a) => a.key,
      ),
    ].filter(([, as]) => as.length > 1);
    // Two decisions approving one key. A copy of one decision (the same decision id at two
    // sequences) is not a second approval: nats-server 2.9.x may store an attempt whose
    // acknowledgement a leader change lost and its retry both (the expected-sequence condition and
    // the message id are checked on the leader before replication: nats-io/nats-server#4320), and
    // a fold applies a decision once (test/unit/decision-copies.test.ts). Copies are reported.
    const journaledTwice = [...journaledApprovals].filter(
      ([, rs]) => new Set(rs.map((r) => r.decision_id)).size > 1,
    );
    const decisionCopies = [...journaledApprovals].filter(
      ([, rs]) => rs.length > new Set(rs.map((r) => r.decision_id)).size,
    );

    const afterKill = attempts.filter((a) => a.sentAt >= killAt && a.sentAt < recoveredAt);
    // the first reply of any kind (STATE_NOT_READY included) to a check sent after the kill
    const afterKillAnswered = attempts
      .filter((a) => a.sentAt >= killAt && !["timeout", "no_responders", "error"].includes(a.outcome))
      .sort((a, b) => a.doneAt - b.doneAt)[0];
    const report = {
      setup,
      fills_acked: acked.size,
      fills_in_stream: fills.filter((m) => m.data.fill_id.startsWith(`cf-${label}-`)).length,
      fills_lost: lostFills.length,
      fills_stored_twice: twiceStored.length,
      fill_publish_errors: fillErrors,
      fill_publish_errors_after_kill: fillErrorsAfterKill,
      fills_republished: republished,
      fills_republished_already_stored: republishedDuplicates,
      checks: new Set(attempts.map((a) => a.key)).size,
      check_attempts: attempts.length,
      check_outcomes: byOutcome(attempts),
      approved_replies: approvedReplies.length,
      decisions_journaled: records.length,
      decisions_lost: lostDecisions.length,
      keys_approved_twice_replied: repliedTwice.length,
      keys_approved_twice_journaled: journaledTwice.length,
      decisions_stored_twice: decisionCopies.map(([k, rs]) => [k, rs.map((r) => [r.seq, r.decision_id])]),
      answered_again_ms: (afterKillAnswered?.doneAt ?? Number.NaN) - killAt,
      failover_ms: recoveredAt - killAt,
      failed_checks_in_failover: afterKill.filter((a) => TRANSIENT.has(a.outcome)).length,
      failover_outcomes: byOutcome(afterKill),
    };
    console.log(`cluster fault report: ${JSON.stringify(report, null, 2)}`);

    expect(ledFills && ledDecisions, "killed node led FILLS and RISK_DECISIONS").toBe(true);
    expect(fillErrorsAfterKill + report.failed_checks_in_failover, "the kill was felt").toBeGreaterThan(0);
    expect(lostFills, "acknowledged fills missing from FILLS").toEqual([]);
    expect(twiceStored, "fills stored twice").toEqual([]);
    expect(
      ackSeqMismatch.map(([id]) => id),
      "PubAck seq not holding that fill",
    ).toEqual([]);
    expect(
      lostDecisions.map((a) => a.orderId),
      "approved replies without an approval on RISK_DECISIONS",
    ).toEqual([]);
    expect(
      repliedTwice.map(([k]) => k),
      "keys approved twice (replies)",
    ).toEqual([]);
    expect(
      journaledTwice.map(([k]) => k),
      `keys approved twice (journal): ${JSON.stringify(
        journaledTwice.map(([k, rs]) => [k, rs.map((r) => [r.seq, r.decision_id, r.instance])]),
      )}`,
    ).toEqual([]);
    expect(report.failover_ms).toBeLessThan(RECOVERY_DEADLINE_MS);

    // ---- the engine's state equals a rebuild from the surviving nodes
    await waitFor(() => engine.ready(), { timeoutMs: 20_000, message: "engine not ready" });
    await settled(engine);
    const rebuilt = await rebuild({
      config: testConfig(cluster.runningUrl(), {}, mkdtempSync(join(tmpdir(), "mts-rb-"))),
      out: join(mkdtempSync(join(tmpdir(), "mts-rb-out-")), "rebuilt.sqlite"),
      clock,
      log: silentLogger,
    });
    expect(rebuilt.state_digest).toBe(engine.status().state_digest);
    expect(rebuilt.cursors["FILLS"]).toBe((await jsm.streams.info("FILLS")).state.last_seq);
  }

  it("loses nothing acknowledged and answers checks again when the engine's node dies", async () => {
    const attached = connectedNode(engine.nc);
    expect(attached, "engine's node").toBeDefined();
    // The hardest node to lose: the engine's own, leading the streams it writes and reads most.
    await killUnderLoad(cluster.node(attached!), "attached");
  });

  it("the killed node rejoins and catches up", async () => {
    const down = cluster.nodes.find((n) => !n.running);
    expect(down).toBeDefined();
    await down!.restart();
    const jsm = await jetstreamManager(nc);
    for (const spec of streamCatalog()) {
      const info = await waitStreamCurrent(jsm, spec.name, 2, 30_000);
      expect(
        (info.cluster?.replicas ?? []).map((p) => p.name),
        spec.name,
      ).toContain(down!.name);
    }
    expect(await streamLeader(jsm, "FILLS")).toBeDefined();
    const d = await bus.check(order({ fund_id: "alpha", symbol: "MSFT", quantity: "1" }));
    expect(d.approved, `a check after the rejoin: ${d.rejection_code} ${d.reason}`).toBe(true);
  });

  it("loses nothing acknowledged and answers checks again when another node dies", async () => {
    // The engine stays connected; the leaders of FILLS and RISK_DECISIONS, and any consumer
    // placed there, go away under it.
    const other = cluster.nodes.find((n) => n.running && n.name !== connectedNode(engine.nc));
    expect(other).toBeDefined();
    await killUnderLoad(other!, "other");
    console.log(`cluster fault test: ${Date.now() - t0} ms in all`);
  });
});
