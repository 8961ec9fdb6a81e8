/**
 * deploy/engines/engines.sh, the way an operator runs three engines on the 3-node cluster: start
 * them (each ready, the 64 partitions shared out), then a rolling restart of all three under a
 * steady stream of checks: no check fails, none is answered STATE_NOT_READY, and afterwards three
 * new processes share every partition again. The script runs as it is, against a test cluster on
 * free ports (NATS_URL, HTTP_PORTS and VAR_DIR point it there).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import { statusAll } from "../../src/cli/commands/status.js";
import { type TestCluster, freePorts, startTestCluster } from "../support/cluster.js";
import { envelope } from "../support/engine.js";
import { connectTest, waitFor } from "../support/nats.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SCRIPT = join(ROOT, "deploy", "engines", "engines.sh");

interface View {
  instance: string;
  ready: boolean;
  owned: number;
}

describe("deploy/engines: three engines on the 3-node cluster, rolling restart", () => {
  let cluster: TestCluster;
  let nc: NatsConnection;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  const script = (cmd: string) => run("bash", [SCRIPT, cmd], { cwd: ROOT, env, timeout: 300_000 });

  beforeAll(async () => {
    cluster = await startTestCluster();
    nc = await connectTest(cluster.url, { timeout: 2000 });
    dir = mkdtempSync(join(tmpdir(), "mts-deploy-"));
    env = { ...process.env, NATS_URL: cluster.url, HTTP_PORTS: (await freePorts(3)).join(" "), VAR_DIR: dir };
    for (const k of Object.keys(env)) if (k.startsWith("RISK_") || k === "LOG_LEVEL") delete env[k];
  }, 60_000);

  afterAll(async () => {
    if (env) await script("stop").catch(() => undefined);
    await nc?.close();
    await cluster?.stop();
    if (dir && process.env["CRASH_KEEP"] !== "1") rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("starts three engines sharing the partitions, and restarts them in turn failing no check", async () => {
    const started = await script("start");
    expect(started.stdout).toMatch(/e3: ready/);
    const before = (await statusAll(nc, 500)) as unknown as View[];
    expect(before).toHaveLength(3);
    expect(before.every((e) => e.ready && e.owned > 0)).toBe(true);
    expect(before.reduce((s, e) => s + e.owned, 0)).toBe(64);

    const funds = ["r0", "r1", "r2", "r3", "r4", "r5"];
    const js = jetstream(nc);
    for (const f of funds) await js.publish(Subjects.envelopeUpdated(f), JSON.stringify(envelope(f)));
    // every engine has the envelopes before the load starts (an engine without one rejects)
    await waitFor(
      async () => {
        const v = (await statusAll(nc, 300)) as unknown as { cursors: Record<string, number> }[];
        return v.length === 3 && v.every((s) => (s.cursors["RISK_ENVELOPES"] ?? 0) >= funds.length);
      },
      { timeoutMs: 20_000, message: "envelopes applied by every engine" },
    );

    const outcome = { ok: 0, notReady: 0, failed: 0, rejected: 0 };
    const failures: string[] = [];
    let running = true;
    let n = 0;
    const load = (async () => {
      const inFlight = new Set<Promise<void>>();
      while (running) {
        const f = funds[n % funds.length]!;
        const i = n++;
        const order = {
          order_id: `${f}-${i}`,
          idempotency_key: `${f}-key-${i}`,
          fund_id: f,
          broker: "paper",
          symbol: "AAPL",
          side: "BUY",
          order_type: "LIMIT",
          quantity: "1",
          limit_price: "100",
        };
        const subject = i % 2 ? Subjects.check : Subjects.checkFund(f);
        const p = nc
          .request(subject, JSON.stringify(order), { timeout: 10_000 })
          .then((m) => {
            const d = m.json<RiskDecision>();
            if (d.rejection_code === "STATE_NOT_READY") {
              outcome.notReady++;
              failures.push(`${new Date().toISOString()} ${order.order_id}: STATE_NOT_READY ${d.reason}`);
            } else if (d.approved) outcome.ok++;
            else {
              outcome.rejected++;
              failures.push(`${order.order_id}: ${d.rejection_code} ${JSON.stringify(d.details)}`);
            }
          })
          .catch((err: unknown) => {
            outcome.failed++;
            failures.push(`${order.order_id}: ${String(err)}`);
          });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        await new Promise((r) => setTimeout(r, 10)); // ≈ 100 checks/s
      }
      await Promise.all(inFlight);
    })();

    await waitFor(() => outcome.ok > 20, {
      timeoutMs: 20_000,
      message: "checks approved before the restart",
    });
    const restarted = await script("rolling-restart");
    running = false;
    await load;

    expect(restarted.stdout.match(/: ready \(pid/g)).toHaveLength(3);
    expect(outcome, [...failures.slice(0, 10), `files: ${dir}`].join("\n")).toMatchObject({
      notReady: 0,
      failed: 0,
      rejected: 0,
    });
    expect(outcome.ok).toBeGreaterThan(100);

    const after = (await statusAll(nc, 500)) as unknown as View[];
    expect(after).toHaveLength(3);
    expect(after.every((e) => e.ready && e.owned > 0)).toBe(true);
    expect(after.reduce((s, e) => s + e.owned, 0)).toBe(64);
    const old = new Set(before.map((e) => e.instance));
    expect(after.filter((e) => old.has(e.instance))).toEqual([]); // three new processes
  }, 300_000);
});
