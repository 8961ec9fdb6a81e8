/**
 * Several engines, one service (CONTRACT.md "Several engines"): engine processes (`mts-risk serve`,
 * default configuration) on one nats-server. Racing orders over both check subjects approve exactly
 * N for headroom N whichever engine receives them; a kill -9 of the owner moves its funds within
 * `ownership.takeover_s`, and every surviving engine's state digest then equals `mts-risk rebuild`'s;
 * a paused owner that wakes approves nothing for the funds it lost; a rolling SIGTERM of every engine
 * under steady load fails no check; SIGTERM with NATS gone exits. (A network cut: several-cut.test.ts.)
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { join } from "node:path";
import { Subjects } from "../../src/contract/subjects.js";
import { partitionOf } from "../../src/ownership/partition.js";
import { waitFor } from "../support/nats.js";
import { readDecisions, readSnapshot, requestStatus } from "./support.js";
import {
  type EngineView,
  PARTITIONS,
  SeveralEngines,
  TAKEOVER_MS,
  isProcess,
  raceOrder,
} from "./several-support.js";

describe("several engines, one service", () => {
  let h: SeveralEngines;
  beforeEach(async () => {
    h = await SeveralEngines.start();
  });
  afterEach(async () => {
    await h?.stop();
  });

  it("2 engines, then a third joining mid-race: 1 000 racing orders over both subjects approve exactly N", async () => {
    await h.startEngines(2);
    await h.publishEnvelope("r1", { max_position_pct: "0.10" });
    await h.publishEnvelope("r2", { max_position_pct: "0.10" });

    const first = await h.race("r1", 1000);
    expect(first.approved).toBe(100);
    expect(first.decisions.filter((d) => !d.approved).map((d) => d.rejection_code)).toEqual(
      Array.from({ length: 900 }, () => "MAX_POSITION_EXCEEDED"),
    );
    expect(first.seen).toEqual({ notReady: 0, timeouts: 0 });

    // a third engine joins while r2's orders race: ownership moves, the headroom does not double
    const third = h.engine();
    third.start();
    const second = await h.race("r2", 1000);
    expect(second.approved).toBe(100);
    await h.ready(third);
    const v = await h.spread(3);
    expect(Math.max(...v.map((e) => e.owned))).toBeLessThanOrEqual(40); // spread: ~21 each

    // every journaled approval of the fund, across engines: exactly N
    const records = await readDecisions(jetstream(h.nc), h.jsm);
    for (const fund of ["r1", "r2"]) {
      const approvedKeys = new Set(
        records.filter((r) => r.fund_id === fund && r.decision.approved).map((r) => r.idempotency_key),
      );
      expect(approvedKeys.size).toBe(100);
    }
  }, 180_000);

  it("kill -9 of the owner under load: the others own its funds within takeover_s; N holds; every survivor's digest = rebuild", async () => {
    await h.startEngines(3);
    await h.publishEnvelope("k1", { max_position_pct: "0.10" });
    const p = partitionOf("k1", PARTITIONS);
    const { engine: owner } = await h.ownerOf("k1");
    const survivors = h.engines.filter((e) => e !== owner);

    let answered = 0;
    const seen = { notReady: 0, timeouts: 0 };
    const all = Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        // a steady stream: order i leaves after i × 4 ms
        await new Promise((r) => setTimeout(r, i * 4));
        const d = await h.decide(raceOrder("k1", i), i % 2 ? Subjects.check : Subjects.checkFund("k1"), seen);
        answered++;
        return d;
      }),
    );
    await waitFor(() => answered >= 200, { timeoutMs: 30_000, intervalMs: 5, message: "load under way" });
    const killedAt = Date.now();
    await owner.kill9();
    const took = await waitFor(
      async () => {
        const v = await h.views();
        const s = survivors.map((e) => v.find((x) => isProcess(x, e)));
        const owned = s.reduce((n, x) => n + (x?.owned ?? 0), 0);
        return owned === PARTITIONS && s.some((x) => x?.partitions.includes(p))
          ? Date.now() - killedAt
          : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 50, message: "the survivors own every partition" },
    );
    expect(took).toBeLessThanOrEqual(TAKEOVER_MS + 1000); // the poll's own period and a loaded machine
    const decisions = await all;
    expect(decisions.filter((d) => d.approved)).toHaveLength(100);

    // the new owner's state holds every approval the dead owner journaled: the same keys replay
    const again = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => h.decide(raceOrder("k1", i), Subjects.check, seen)),
    );
    expect(again.filter((d) => d.approved)).toHaveLength(100);
    expect(again.every((d) => d.details["replayed"] === "true")).toBe(true);

    // every surviving engine folded exactly what a clean rebuild of the streams folds
    const { live, rebuilt } = await h.settledAndRebuilt(survivors);
    expect(live).toHaveLength(2);
    for (const s of live) {
      expect({ instance: s.instance, cursors: s.cursors }).toEqual({
        instance: s.instance,
        cursors: rebuilt.cursors,
      });
      expect({ instance: s.instance, digest: s.state_digest }).toEqual({
        instance: s.instance,
        digest: rebuilt.state_digest,
      });
    }
  }, 180_000);

  it("SIGSTOP of the owner until another takes over, then SIGCONT under racing load: the woken engine approves nothing", async () => {
    await h.startEngines(2);
    await h.publishEnvelope("z1", { max_position_pct: "0.10" });
    const p = partitionOf("z1", PARTITIONS);
    const { view: ownerView, engine: owner } = await h.ownerOf("z1");
    const other = h.engines.find((e) => e !== owner)!;

    owner.freeze();
    await waitFor(
      async () => {
        const s = await requestStatus(h.nc, 500).catch(() => undefined);
        const v = s as unknown as EngineView | undefined;
        return v && v.instance.endsWith(`-${other.pid}`) && v.partitions.includes(p);
      },
      { timeoutMs: 20_000, intervalMs: 100, message: "the other engine took the partition" },
    );
    // wake the old owner and race at once: it may receive orders before it hears of its loss
    owner.thaw();
    const r = await h.race("z1", 1000);
    expect(r.approved).toBe(100);

    const records = await readDecisions(jetstream(h.nc), h.jsm);
    const approvals = records.filter((x) => x.fund_id === "z1" && x.decision.approved);
    expect(new Set(approvals.map((x) => x.idempotency_key)).size).toBe(100);
    expect(approvals.filter((x) => x.instance === ownerView.instance)).toEqual([]);
  }, 180_000);

  it("rolling SIGTERM of every engine under a steady 500 checks/s: no failed check, no STATE_NOT_READY", async () => {
    await h.startEngines(2);
    const funds = ["g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7"];
    for (const f of funds) await h.publishEnvelope(f); // no position limit: every order approved
    const outcome = { ok: 0, notReady: 0, failed: 0, rejected: 0 };
    const notReadyWhy: string[] = [];
    let running = true;
    let n = 0;
    // open loop at RATE checks/s: request i is due at t0 + i / RATE, whatever the earlier answers
    const RATE = 500;
    const t0 = performance.now();
    const load = (async () => {
      const inFlight = new Set<Promise<void>>();
      while (running) {
        const due = Math.floor(((performance.now() - t0) * RATE) / 1000);
        for (; n < due; n++) {
          const f = funds[n % funds.length]!;
          const o = raceOrder(f, n);
          const pr = h.request(o, n % 2 ? Subjects.check : Subjects.checkFund(f), 5000).then((d) => {
            if (!d) outcome.failed++;
            else if (d.rejection_code === "STATE_NOT_READY") {
              outcome.notReady++;
              notReadyWhy.push(`${new Date().toISOString()} ${String(o["order_id"])} ${d.reason}`);
            } else if (d.approved) outcome.ok++;
            else outcome.rejected++;
          });
          inFlight.add(pr);
          void pr.finally(() => inFlight.delete(pr));
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      await Promise.all(inFlight);
    })();

    for (const e of [...h.engines]) {
      await waitFor(() => outcome.ok > 0, { timeoutMs: 10_000 });
      const exit = await e.stop(20_000);
      expect(exit.signal).toBeNull(); // exited by itself, not killed after the grace period
      e.start();
      await h.ready(e);
      await h.spread(2);
    }
    running = false;
    await load;
    const why = () =>
      [...h.failures.slice(0, 10), ...notReadyWhy.slice(0, 10), `files: ${h.dir}`, h.notable()].join("\n");
    if (outcome.notReady + outcome.failed + outcome.rejected > 0) console.log(why());
    expect(outcome, why()).toMatchObject({
      notReady: 0,
      failed: 0,
      rejected: 0,
    });
    expect(outcome.ok).toBe(n); // every check sent was answered, and approved
    expect(n).toBeGreaterThan(RATE * 10); // the restarts ran under the load, not after it
  }, 240_000);

  it("SIGTERM with NATS unreachable exits within seconds, its applied state flushed", async () => {
    const [e] = await h.startEngines(1);
    await h.publishEnvelope("d1");
    const status = (await requestStatus(h.nc)) as unknown as { cursors: Record<string, number> };
    await h.server.kill(); // the bus is gone
    const t0 = Date.now();
    const exit = await e!.stop(20_000);
    const took = Date.now() - t0;
    expect(exit.signal).toBeNull();
    expect(took).toBeLessThan(8000);
    const snap = readSnapshot(join(h.dir, "state-0", "snapshot.sqlite"));
    expect(snap.cursors["RISK_ENVELOPES"]).toBeGreaterThanOrEqual(status.cursors["RISK_ENVELOPES"]!);
    await h.server.restart(); // for afterEach's stop
  }, 90_000);
});
