/**
 * Red team (replay, crash): `mts-risk serve` killed with SIGKILL in the middle of a burst of checks,
 * fills and OMS events, then started again on its state directory. ENGINE.md: "Decisions that
 * create reservations must survive a crash of the engine"; README "Reliability": "a kill -9 at any
 * point restarts into the same state a clean rebuild gives". Checked: every approval the OMS
 * received is replayed as an approval after the restart (never lost, never re-decided), every
 * refusal received is replayed as that refusal, headroom is used exactly once (approvals across
 * the crash add up to the limit, not more, not less), and the restarted engine's digest equals a
 * rebuild's.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { rebuild } from "../../src/engine/index.js";
import { silentLogger } from "../../src/obs/log.js";
import { Subjects } from "../../src/contract/subjects.js";
import { systemClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, envelope, order, testConfig } from "../support/engine.js";

const BIN = new URL("../../bin/mts-risk.js", import.meta.url).pathname;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

type Status = { ready: boolean; state_digest: string; cursors: Record<string, number> };

describe("red-team replay: kill -9 under load, then restart on the state directory", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let proc: ChildProcess | undefined;
  let stderr = "";
  const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-replay-kill-"));
  const F = "rt-kill";

  async function serve(): Promise<ChildProcess> {
    const port = await freePort();
    const p = spawn(process.execPath, [BIN, "--nats-url", server.url, "--state-dir", stateDir, "serve"], {
      env: {
        ...process.env,
        RISK_HTTP__PORT: String(port),
        RISK_LOG__LEVEL: "warn",
        RISK_OWNERSHIP__TAKEOVER_S: "1",
        RISK_STATE__FLUSH_INTERVAL_MS: "20",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    return p;
  }
  async function status(): Promise<Status> {
    const m = await nc.request(Subjects.status, "{}", { timeout: 2000 });
    return m.json<Status>();
  }
  const check = async (o: Record<string, unknown>): Promise<RiskDecision | undefined> =>
    bus.check(o, Subjects.check, 3000).catch(() => undefined);
  /** Until the engine answers the order with a decision (not a transient STATE_NOT_READY). */
  const decided = (o: Record<string, unknown>): Promise<RiskDecision> =>
    waitFor<RiskDecision | undefined>(
      async () => {
        const d = await check(o);
        return d && d.rejection_code !== "STATE_NOT_READY" ? d : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, message: `decision for ${String(o["order_id"])}` },
    ) as Promise<RiskDecision>;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    proc = await serve();
    await waitFor(async () => (await status()).ready, { timeoutMs: 30_000, message: "serve ready" });
    // headroom: 10% of 1 000 000 = 100 000 = 100 orders of 10 @ 100
    await bus.envelope(envelope(F, { max_position_pct: "0.1" }));
    await decided(order({ fund_id: F, symbol: "WARM", quantity: "1", limit_price: "1" }));
  }, 60_000);
  afterAll(async () => {
    if (proc && proc.exitCode === null) proc.kill("SIGKILL");
    await nc?.close();
    await server?.stop();
  });

  it("nothing acknowledged is lost or doubled across a kill -9", async () => {
    const N = 160;
    const KILL_AFTER = 20 + Math.floor(Math.random() * 130); // answers received before the kill
    const orders = Array.from({ length: N }, () =>
      order({ fund_id: F, symbol: "KIL", quantity: "10", limit_price: "100" }),
    );
    const first = new Map<string, RiskDecision>();
    let answered = 0;
    const killed = new Promise<void>((resolve) => {
      const p = proc!;
      p.once("exit", () => resolve());
    });
    let killAt = 0;
    const one1 = async (o: Record<string, unknown>, i: number) => {
      const d = await check(o);
      if (!d) return;
      first.set(String(o["order_id"]), d);
      answered++;
      // fills and OMS events for some approved orders while the burst goes on
      if (d.approved && i % 3 === 0) {
        await bus
          .fill({ fund_id: F, symbol: "KIL", order_id: o["order_id"], quantity: "10", price: "100" })
          .catch(() => undefined);
      } else if (d.approved && i % 3 === 1) {
        await bus.orderEvent("accepted", F, String(o["order_id"])).catch(() => undefined);
      }
      if (answered >= KILL_AFTER && killAt === 0) {
        killAt = Date.now();
        proc!.kill("SIGKILL");
      }
    };
    // waves of 8 concurrent checks; the engine is killed inside a wave once KILL_AFTER approvals
    // have been received; the rest of the orders are not sent before the restart
    const load: Promise<void>[] = [];
    for (let w = 0; w * 8 < N && killAt === 0; w++) {
      const wave = orders.slice(w * 8, w * 8 + 8).map((o, j) => one1(o, w * 8 + j));
      load.push(...wave);
      await Promise.race([Promise.all(wave), killed]);
    }
    await Promise.all(load);
    if (killAt === 0) proc!.kill("SIGKILL");
    await killed;
    proc = await serve();
    await waitFor(async () => (await status()).ready, { timeoutMs: 30_000, message: "serve ready again" });

    // every order retried with its key: an answer received before the kill must be replayed
    const after = new Map<string, RiskDecision>();
    for (const o of orders) after.set(String(o["order_id"]), await decided(o));
    const lost: string[] = [];
    for (const [id, d] of first) {
      const a = after.get(id)!;
      if (d.rejection_code === "STATE_NOT_READY") continue; // transient, evaluated afresh
      if (
        a.approved !== d.approved ||
        a.rejection_code !== d.rejection_code ||
        a.details["replayed"] !== "true"
      )
        lost.push(
          `${id}: ${d.approved ? "approved" : d.rejection_code} -> ${a.approved ? "approved" : a.rejection_code} replayed=${a.details["replayed"]}`,
        );
    }
    const approved = [...after.values()].filter((d) => d.approved).length;
    console.log("kill -9 after", KILL_AFTER, "answers:", {
      answered,
      approvedBefore: [...first.values()].filter((d) => d.approved).length,
      approved,
    });
    // headroom for exactly 100 orders: one more is refused
    const extra = await decided(order({ fund_id: F, symbol: "KIL", quantity: "10", limit_price: "100" }));
    const one = await decided(order({ fund_id: F, symbol: "KIL", quantity: "1", limit_price: "100" }));

    await waitFor(
      async () => {
        const a = (await status()).state_digest;
        await new Promise((r) => setImmediate(r));
        return a === (await status()).state_digest;
      },
      { timeoutMs: 5000 },
    );
    const live = await status();
    const dir = mkdtempSync(join(tmpdir(), "mts-rt-replay-kill-rb-"));
    const r = await rebuild({
      config: testConfig(server.url, {}, dir),
      out: join(dir, "snapshot.sqlite"),
      clock: systemClock,
      log: silentLogger,
    });
    expect({
      answeredBeforeKill: answered > 0,
      lost,
      approved,
      extra: extra.rejection_code,
      one: one.rejection_code,
      digest: r.state_digest,
    }).toEqual({
      answeredBeforeKill: true,
      lost: [],
      approved: 100,
      extra: "MAX_POSITION_EXCEEDED",
      one: "MAX_POSITION_EXCEEDED",
      digest: live.state_digest,
    });
  }, 60_000);
});
