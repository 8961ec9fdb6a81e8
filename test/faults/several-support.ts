/**
 * Several engine processes (`mts-risk serve`, default configuration) on one nats-server, and what
 * the several-engines fault tests do with them: start, see each engine's view (`statusAll`), race
 * orders over both check subjects as an OMS would (retrying a timeout or STATE_NOT_READY with the
 * same key), and compare every engine's state digest with `mts-risk rebuild`'s.
 */
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { statusAll } from "../../src/cli/commands/status.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import { partitionOf } from "../../src/ownership/partition.js";
import { envelope } from "../support/engine.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { EngineProcess, type RebuildReply, type StatusReply, rebuildCli, streamTargets } from "./support.js";

export const PARTITIONS = 64;
export const TAKEOVER_MS = 5000; // the default ownership.takeover_s

export interface EngineView extends StatusReply {
  owned: number;
  partitions: number[];
  epochs: Record<string, number>;
  lag: number;
}

/** 10 × 100 = 1 000 of notional per order; with max_position_pct 0.10 of 1 000 000, N = 100. */
export function raceOrder(fund: string, i: number): Record<string, unknown> {
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

export interface Seen {
  notReady: number;
  timeouts: number;
}

/** The engine's instance id is `<hostname>-<pid>`. */
export const isProcess = (v: { instance: string }, e: EngineProcess): boolean =>
  e.pid !== undefined && v.instance.endsWith(`-${e.pid}`);

const sortKeys = (o: Record<string, number>) =>
  JSON.stringify(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));

export class SeveralEngines {
  readonly engines: EngineProcess[] = [];
  /** Requests that got no answer (time, order, subject, error). */
  readonly failures: string[] = [];
  private rebuilds = 0;

  private constructor(
    readonly server: NatsServerHandle,
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    readonly dir: string,
  ) {}

  static async start(): Promise<SeveralEngines> {
    const server = await startTestNats();
    const nc = await connectTest(server.url, { timeout: 2000 });
    return new SeveralEngines(
      server,
      nc,
      await jetstreamManager(nc),
      mkdtempSync(join(tmpdir(), "mts-several-")),
    );
  }

  async stop(): Promise<void> {
    for (const e of this.engines) {
      e.thaw();
      if (e.running) await e.kill9();
    }
    await this.nc.close();
    await this.server.stop();
    if (process.env["CRASH_KEEP"] !== "1") rmSync(this.dir, { recursive: true, force: true });
  }

  /** A new engine process (not started), on the server or on `natsUrl` (a proxy to it). */
  engine(natsUrl = this.server.url): EngineProcess {
    const i = this.engines.length;
    const e = new EngineProcess({
      natsUrl,
      stateDir: join(this.dir, `state-${i}`),
      logFile: join(this.dir, `engine-${i}.log`),
    });
    this.engines.push(e);
    return e;
  }

  /** Each engine's warnings, errors and ownership changes, in order (for failure messages). */
  notable(): string {
    const keep = (l: string) => /"level":[456]\d|partition/.test(l);
    return this.engines.map((e, i) => `--- engine ${i}\n${e.logLines(keep).join("\n")}`).join("\n");
  }

  logs(): string {
    return this.engines.map((e, i) => `--- engine ${i}\n${e.logTail(30)}`).join("\n");
  }

  /** Every engine's status; without the state digest unless `digest` (see statusAll). */
  async views(waitMs = 400, digest = false): Promise<EngineView[]> {
    return (await statusAll(this.nc, waitMs, { digest })) as unknown as EngineView[];
  }

  /** Until `n` engines answer, all ready, owning every partition between them, each some. */
  async spread(n: number, timeoutMs = 30_000): Promise<EngineView[]> {
    const v = await waitFor<EngineView[] | undefined>(
      async () => {
        const v = await this.views();
        const ok =
          v.length === n &&
          v.every((e) => e.ready && e.owned > 0) &&
          v.reduce((s, e) => s + e.owned, 0) === PARTITIONS;
        return ok ? v : undefined;
      },
      { timeoutMs, intervalMs: 100, message: `${n} engines sharing the partitions` },
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${this.logs()}`);
    });
    return v!;
  }

  /** Until this process answers status ready. */
  async ready(e: EngineProcess, timeoutMs = 60_000): Promise<void> {
    await waitFor(async () => (await this.views(300)).some((v) => isProcess(v, e) && v.ready), {
      timeoutMs,
      intervalMs: 100,
      message: "engine ready",
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${this.logs()}`);
    });
  }

  async startEngines(n: number): Promise<EngineProcess[]> {
    const started = Array.from({ length: n }, () => this.engine());
    for (const e of started) e.start();
    for (const e of started) await this.ready(e);
    await this.spread(n);
    return started;
  }

  async publishEnvelope(fund: string, over: Record<string, unknown> = {}): Promise<void> {
    const js = jetstream(this.nc);
    await js.publish(Subjects.envelopeUpdated(fund), JSON.stringify(envelope(fund, over)));
    const seq = (await this.jsm.streams.info("RISK_ENVELOPES")).state.last_seq;
    // every engine applied it
    await waitFor(
      async () => {
        const v = await this.views(300);
        return v.length > 0 && v.every((s) => (s.cursors["RISK_ENVELOPES"] ?? 0) >= seq);
      },
      { timeoutMs: 10_000, message: "envelope applied everywhere" },
    );
  }

  /** The engine owning `fund`'s partition now, and its view. */
  async ownerOf(fund: string): Promise<{ view: EngineView; engine: EngineProcess }> {
    const p = partitionOf(fund, PARTITIONS);
    const view = (await this.views()).find((e) => e.partitions.includes(p));
    const engine = view && this.engines.find((e) => isProcess(view, e));
    if (!view || !engine) throw new Error(`no engine owns ${fund} (partition ${p})\n${this.logs()}`);
    return { view, engine };
  }

  async request(order: Record<string, unknown>, subject: string, timeoutMs: number) {
    const t0 = Date.now();
    try {
      const m = await this.nc.request(subject, JSON.stringify(order), { timeout: timeoutMs });
      return m.json<RiskDecision>();
    } catch (err) {
      this.failures.push(
        `${new Date(t0).toISOString()} ${String(order["order_id"])} ${subject} ${String(err)}`,
      );
      return undefined;
    }
  }

  /** The OMS: the same key again on a timeout or STATE_NOT_READY, until a decision or the deadline. */
  async decide(order: Record<string, unknown>, subject: string, seen: Seen): Promise<RiskDecision> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const d = await this.request(order, subject, 15_000);
      if (d && d.rejection_code !== "STATE_NOT_READY") return d;
      if (d) seen.notReady++;
      else seen.timeouts++;
      if (Date.now() > deadline) throw new Error(`no decision for ${String(order["order_id"])}`);
      await new Promise((r) => setTimeout(r, 50)); // retry backoff
    }
  }

  /** `count` orders of `fund`, all in flight at once, alternating the two check subjects. */
  async race(fund: string, count: number, seen: Seen = { notReady: 0, timeouts: 0 }) {
    const decisions = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        this.decide(raceOrder(fund, i), i % 2 === 0 ? Subjects.check : Subjects.checkFund(fund), seen),
      ),
    );
    return { decisions, approved: decisions.filter((d) => d.approved).length, seen };
  }

  /**
   * Every engine of `alive` settled on the same stream prefix (ready, each consumed stream applied
   * up to its last sequence, nothing published meanwhile) and a clean `mts-risk rebuild` of that
   * prefix. Retried while something is still being published (a worker), up to `attempts` times.
   */
  async settledAndRebuilt(
    alive: EngineProcess[],
    attempts = 4,
  ): Promise<{ live: EngineView[]; rebuilt: RebuildReply }> {
    let last: { live: EngineView[]; rebuilt: RebuildReply } | undefined;
    for (let i = 0; i < attempts; i++) {
      const before = await streamTargets(this.jsm);
      const live = await waitFor<EngineView[] | undefined>(
        async () => {
          const v = await this.views(400, true);
          const mine = alive.map((e) => v.find((s) => isProcess(s, e)));
          const done = mine.every(
            (s) => s?.ready && Object.entries(before).every(([st, seq]) => (s.cursors[st] ?? 0) >= seq),
          );
          return done ? (mine as EngineView[]) : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100, message: "every engine applied every stream" },
      );
      if (JSON.stringify(before) !== JSON.stringify(await streamTargets(this.jsm))) continue;
      const rebuilt = await rebuildCli(this.server.url, join(this.dir, `rebuilt-${++this.rebuilds}.sqlite`));
      last = { live: live!, rebuilt };
      if (live!.every((s) => sortKeys(s.cursors) === sortKeys(rebuilt.cursors))) return last;
    }
    if (!last) throw new Error("the streams never stopped growing");
    return last;
  }
}
