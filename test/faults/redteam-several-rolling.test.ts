/**
 * Red team, several engines: a rolling restart of three engines done the way an operator's script
 * would (SIGTERM one, start it again, wait until `mts-risk status --all` shows it ready, next one),
 * without waiting for the partitions to spread back, under a steady 200 checks/s. CONTRACT.md
 * "Several engines": "A planned stop (SIGTERM) hands the engine's funds over before it exits: a
 * rolling restart of every engine fails no check." Expected: every check answered, approved, no
 * STATE_NOT_READY; `status --all` lists every engine with what it owns and its lag.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Subjects } from "../../src/contract/subjects.js";
import { waitFor } from "../support/nats.js";
import { PARTITIONS, SeveralEngines, raceOrder } from "./several-support.js";

describe("red team: several engines, a quick rolling restart of three", () => {
  let h: SeveralEngines;
  beforeEach(async () => {
    h = await SeveralEngines.start();
  });
  afterEach(async () => {
    await h?.stop();
  });

  it("fails no check", async () => {
    await h.startEngines(3);
    const funds = Array.from({ length: 12 }, (_, i) => `rr${i}`);
    for (const f of funds) await h.publishEnvelope(f);
    const outcome = { ok: 0, notReady: 0, failed: 0, rejected: 0 };
    const bad: string[] = [];
    let running = true;
    let n = 0;
    const RATE = 200;
    const t0 = performance.now();
    const load = (async () => {
      const inFlight = new Set<Promise<void>>();
      while (running) {
        const due = Math.floor(((performance.now() - t0) * RATE) / 1000);
        for (; n < due; n++) {
          const f = funds[n % funds.length]!;
          const o = raceOrder(f, n);
          const sentAt = new Date().toISOString();
          const pr = h.request(o, n % 2 ? Subjects.check : Subjects.checkFund(f), 5000).then((d) => {
            if (!d) outcome.failed++;
            else if (d.approved) outcome.ok++;
            else {
              if (d.rejection_code === "STATE_NOT_READY") outcome.notReady++;
              else outcome.rejected++;
              bad.push(`${sentAt} ${String(o["order_id"])} ${d.rejection_code} ${d.reason}`);
            }
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
      expect(exit.signal).toBeNull();
      e.start();
      await h.ready(e);
    }
    await h.spread(3);
    running = false;
    await load;
    const v = await h.views();
    expect(v.reduce((s, x) => s + x.owned, 0)).toBe(PARTITIONS);
    expect(v.every((x) => typeof x.lag === "number")).toBe(true);
    const why = [...h.failures.slice(0, 10), ...bad.slice(0, 10), `files: ${h.dir}`].join("\n");
    expect(outcome, why).toMatchObject({ notReady: 0, failed: 0, rejected: 0 });
    expect(outcome.ok).toBe(n);
  }, 150_000);
});
