/**
 * The operator commands (halt, resume, status <fund>, tail), run in-process (`main(argv)`) against
 * a real nats-server and an in-process engine.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { NatsServerHandle } from "../src/bus/nats-server.js";
import { expectOneLineError, run, type Run } from "./support/cli.js";
import { CliError } from "../src/cli/common.js";
import { publishEnvelope } from "../src/cli/commands/envelope-set.js";
import { Subjects } from "../src/contract/index.js";
import { canon, dec } from "../src/decimal/index.js";
import type { Engine } from "../src/engine/index.js";
import { Bus, envelope, order, startTestEngine } from "./support/engine.js";
import { connectTest, startTestNats, waitFor } from "./support/nats.js";

const lines = (out: string): Record<string, unknown>[] =>
  out
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Run `args` (a tail) while `send` is called over and over, until the tail returns. */
async function whileRunning(args: string[], send: () => Promise<unknown>): Promise<Run> {
  let done = false;
  const tail = run(args).finally(() => {
    done = true;
  });
  while (!done) await send();
  return tail;
}

describe("mts-risk operator commands", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let bus: Bus;
  let dir: string;
  let g: string[];

  const halts = (fund: string) => engine.observe.fund(fund)?.halts;

  beforeAll(async () => {
    vi.stubEnv("RISK_LOG__LEVEL", "warn");
    vi.stubEnv("USER", "tester");
    server = await startTestNats();
    dir = await mkdtemp(join(tmpdir(), "mts-cli-op-test-"));
    const stateDir = join(dir, "state");
    g = ["--nats-url", server.url, "--state-dir", stateDir];
    engine = await startTestEngine(server.url, { stateDir });
    nc = await connectTest(server.url);
    jsm = await jetstreamManager(nc);
    bus = new Bus(nc);
    const limits = { max_position_pct: "0.10", max_gross_exposure_pct: "1.5", daily_loss_halt_pct: "0.03" };
    await bus.envelope(envelope("alpha", limits));
    await bus.envelope(envelope("delta", limits));
    const applied = () => ["alpha", "delta"].every((f) => engine.observe.fund(f)?.envelope_id);
    await waitFor(applied, { message: "envelopes applied" });
  });

  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    vi.unstubAllEnvs();
  });

  it("halts a fund (FUND_HALTED for risk-increasing orders) and resumes it", async () => {
    const early = await run(["resume", "alpha", "--operator", "ops", "--reason", "nothing to lift", ...g]);
    expectOneLineError(early, 1);
    expect(early.err).toContain("not halted");

    const h = await run(["halt", "alpha", "--reason", "desk review", ...g]);
    expect(h.err).toBe("");
    expect(h.code).toBe(0);
    const halted = JSON.parse(h.out) as Record<string, unknown>;
    expect(halted).toMatchObject({ fund_id: "alpha", severity: "MANUAL" });
    expect(typeof halted.stream_seq).toBe("number");

    const rec = await waitFor(() => halts("alpha")?.["MANUAL"], { message: "halt applied" });
    expect(rec).toMatchObject({ reason: "desk review", by: "operator:tester", seq: halted.stream_seq });
    const d = await bus.check(order({ fund_id: "alpha" }));
    expect(d).toMatchObject({ approved: false, rejecting_gate: "drawdown", rejection_code: "FUND_HALTED" });

    const r = await run(["resume", "alpha", "--operator", "ops", "--reason", "reviewed", ...g]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const resumed = JSON.parse(r.out) as Record<string, unknown>;
    expect(resumed.fund_id).toBe("alpha");
    expect(resumed.stream_seq).toBeGreaterThan(Number(halted.stream_seq));
    await waitFor(() => Object.keys(halts("alpha") ?? { x: 1 }).length === 0, { message: "halt lifted" });
    expect((await bus.check(order({ fund_id: "alpha" }))).approved).toBe(true);

    expectOneLineError(await run(["resume", "alpha", "--operator", "ops", "--reason", "again", ...g]), 1);
  });

  it("halt --kill also asks the OMS to cancel all, once per halt", async () => {
    const subject = Subjects.cancelAll("gamma");
    const r = await run(["halt", "gamma", "--reason", "runaway algo", "--kill", ...g]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { stream_seq: number; cancel_all: Record<string, unknown> };
    expect(out).toMatchObject({ fund_id: "gamma", severity: "KILL_SWITCH" });
    expect(out.cancel_all).toMatchObject({
      subject,
      msg_id: `cancel_all:gamma:${out.stream_seq}`,
    });
    const count = async () =>
      (await jsm.streams.info("OMS_INTENTS", { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
    expect((await jsm.streams.info("OMS_INTENTS")).state.messages).toBeGreaterThanOrEqual(1);
    expect(await count()).toBe(1);
    // The engine's kill-switch worker publishes the same id (before or after the CLI): the stream keeps one.
    const again = await bus.js.publish(subject, JSON.stringify({ fund_id: "gamma", reason: "x", at: "" }), {
      msgID: String(out.cancel_all.msg_id),
    });
    expect(again.duplicate).toBe(true);
    expect(await count()).toBe(1);
    await waitFor(() => halts("gamma")?.["KILL_SWITCH"], { message: "kill switch applied" });
  });

  it("halt --kill pressed again while killed puts a second cancel_all on OMS_INTENTS (one per press)", async () => {
    const subject = Subjects.cancelAll("gamma");
    const count = async () =>
      (await jsm.streams.info("OMS_INTENTS", { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
    const before = await count();
    const r = await run(["halt", "gamma", "--reason", "still running", "--kill", ...g]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as {
      stream_seq: number;
      cancel_all: { msg_id: string; duplicate: boolean };
    };
    // (`duplicate` may be true: the engine may have published this press's cancel_all first)
    expect(out.cancel_all).toMatchObject({ msg_id: `cancel_all:gamma:${out.stream_seq}` });
    // the engine handles the same press with the same id: still one more, not two
    await waitFor(() => halts("gamma")?.["KILL_SWITCH"]?.last_seq === out.stream_seq, {
      message: "second press applied",
    });
    const engineCopy = await bus.js.publish(
      subject,
      JSON.stringify({ fund_id: "gamma", reason: "x", at: "" }),
      {
        msgID: out.cancel_all.msg_id,
      },
    );
    expect(engineCopy.duplicate).toBe(true);
    expect(await count()).toBe(before + 1);
  });

  it("refuses bad usage with one line and exit 2", async () => {
    for (const args of [
      ["halt", "alpha"], // no --reason
      ["halt", "alpha", "--reason", "x", "--severity", "DAILY_LOSS"],
      ["halt", "alpha", "--reason", "x", "--kill", "--severity", "MANUAL"],
      ["halt", "BRK.B", "--reason", "x"],
      ["tail", "fills"],
      ["tail", "alerts", "--rejected"],
      ["tail", "decisions", "--code", "NOPE"],
    ]) {
      expectOneLineError(await run([...args, ...g]), 2);
    }
  });

  it("status <fund> reports exposures against limits and P&L", async () => {
    await bus.fill({ fund_id: "delta", symbol: "AAPL", quantity: "100", price: "100" });
    // The engine's drawdown worker journals the day's baseline when it first sees the fund; this one
    // is for an engine without it (the first baseline of a period wins).
    await bus.control(Subjects.pnlBaseline("delta"), {
      fund_id: "delta",
      period: "day",
      starts_at: `${new Date().toISOString().slice(0, 10)}T00:00:00Z`,
      equity: "990000",
    });
    type Report = { nav: string; exposures: Record<string, unknown>[]; pnl: Record<string, unknown> };
    const fund = await waitFor(
      async () => {
        const r = await run(["status", "delta", ...g]);
        const f = r.code === 0 ? (JSON.parse(r.out) as { fund: Report & { positions: number } }).fund : null;
        if (!f || f.positions !== 1 || f.pnl.day === null) throw new Error("not yet");
        return f;
      },
      { message: "fill and baseline applied" },
    );
    expect(fund).toMatchObject({
      fund_id: "delta",
      envelope_id: "delta@v1",
      nav: "1000000",
      capital: "1000000",
    });
    expect(fund.exposures).toContainEqual({
      limit: "max_position_pct",
      scope: "AAPL",
      used: "10000",
      limit_pct: "0.1",
      limit_notional: "100000",
      used_pct: "0.01",
    });
    expect(fund.exposures.map((e) => e.limit)).toContain("max_gross_exposure_pct");
    const day = fund.pnl.day as Record<string, string>;
    const base = dec(day.baseline_equity ?? "");
    const pnl = dec(fund.nav).minus(base);
    expect(day).toEqual({
      starts_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T00:00:00(\.000)?Z$/) as unknown,
      baseline_equity: canon(base),
      pnl: canon(pnl),
      pnl_pct: canon(pnl.div(base).round(6, 2)),
      halt_pct: "0.03",
    });
    expect(Object.keys(fund.pnl).sort()).toEqual(["day", "month", "week"]);

    const plain = await run(["status", ...g]);
    expect(plain.code).toBe(0);
    expect(JSON.parse(plain.out)).not.toHaveProperty("fund");

    const unknown = await run(["status", "nobody", ...g]);
    expectOneLineError(unknown, 1);
    expect(unknown.out).toBe("");
  });

  it("tail decisions --count 2 --fund prints that fund's decisions, one JSON line each", async () => {
    const r = await whileRunning(["tail", "decisions", "--count", "2", "--fund", "tailf", ...g], async () => {
      await bus.check(order({ fund_id: "alpha" }));
      await bus.check(order({ fund_id: "tailf" }));
    });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const got = lines(r.out);
    expect(got).toHaveLength(2);
    for (const d of got) {
      expect(d).toMatchObject({ fund_id: "tailf", approved: false, rejection_code: "NO_ENVELOPE" });
      expect(d.order_id).toEqual(expect.any(String));
    }
  });

  it("tail alerts --count 1 prints an alert", async () => {
    const alert = { kind: "test", fund_id: "f", message: "hello", at: new Date().toISOString() };
    const r = await whileRunning(["tail", "alerts", "--count", "1", ...g], () =>
      bus.control(Subjects.alert("test", "f"), alert),
    );
    expect(r.code).toBe(0);
    expect(lines(r.out)).toEqual([alert]);
  });
  describe("envelope set: concurrent updates (Nats-Expected-Last-Subject-Sequence)", () => {
    const G = { timeout: 3000 };
    /** An envelope file's content without a version: the command picks current + 1. */
    const draft = (fund: string, capital: string) => {
      const e = envelope(fund, { capital });
      delete e["version"];
      return e;
    };
    const lastVersion = async (fund: string) =>
      (
        await jsm.streams.getMessage("RISK_ENVELOPES", { last_by_subj: Subjects.envelopeUpdated(fund) })
      )?.json<{
        version: number;
        capital: string;
      }>();
    const loss = (version: number, seq: number) =>
      new RegExp(
        `another envelope update was published concurrently; version ${version} \\(stream seq ${seq}\\) won`,
      );

    it("two updates racing: exactly one is stored, the other fails with exit 2 naming the version that won", async () => {
      const fund = "race1";
      const first = await bus.envelope(envelope(fund, { version: 1 }));
      const other = await connectTest(server.url);
      try {
        // both read the current version before either writes (a barrier, so the race is real on
        // any machine: without it a slow scheduler could run them one after the other)
        let reads = 0;
        let release!: () => void;
        const bothRead = new Promise<void>((r) => (release = r));
        const barrier = {
          afterRead: async () => {
            if (++reads === 2) release();
            await bothRead;
          },
        };
        const results = await Promise.allSettled([
          publishEnvelope(nc, fund, draft(fund, "2000000"), G, barrier),
          publishEnvelope(other, fund, draft(fund, "3000000"), G, barrier),
        ]);
        const ok = results.filter((r) => r.status === "fulfilled");
        const failed = results.filter((r) => r.status === "rejected");
        expect(ok).toHaveLength(1);
        expect(failed).toHaveLength(1);
        const won = (ok[0] as PromiseFulfilledResult<{ envelope_id: string; stream_seq: number }>).value;
        expect(won.envelope_id).toBe(`${fund}@v2`);
        expect(won.stream_seq).toBeGreaterThan(first);
        const err = (failed[0] as PromiseRejectedResult).reason as CliError;
        expect(err).toBeInstanceOf(CliError);
        expect(err.exitCode).toBe(2);
        expect(err.message).toMatch(loss(2, won.stream_seq));
        expect(err.message).not.toContain("\n");
        // the stream holds v1 then the winner's v2, nothing else
        expect((await lastVersion(fund))?.version).toBe(2);
        expect(
          (await jsm.streams.info("RISK_ENVELOPES", { subjects_filter: Subjects.envelopeUpdated(fund) }))
            .state.subjects,
        ).toEqual({
          [Subjects.envelopeUpdated(fund)]: 2,
        });
      } finally {
        await other.close();
      }
    });

    it("a stale read: a newer version published between read and write makes the update fail, not vanish", async () => {
      const fund = "race2";
      await bus.envelope(envelope(fund, { version: 1 }));
      let newer = 0;
      const attempt = publishEnvelope(nc, fund, draft(fund, "2000000"), G, {
        // another operator publishes v5 (a different version: the stream's sequence check, not dedup)
        afterRead: async () =>
          void (newer = await bus.envelope(envelope(fund, { version: 5, capital: "5000000" }))),
      });
      const err = (await attempt.then(
        () => undefined,
        (e: unknown) => e,
      )) as CliError;
      expect(err).toBeInstanceOf(CliError);
      expect(err.exitCode).toBe(2);
      expect(err.message).toMatch(loss(5, newer));
      expect(await lastVersion(fund)).toMatchObject({ version: 5, capital: "5000000" });

      // read again (through the command itself): v6 goes through; the CLI prints one JSON line
      const file = join(dir, "race2.json");
      await writeFile(file, JSON.stringify(draft(fund, "6000000")));
      await waitFor(() => engine.observe.fund(fund)?.envelope_version === 5);
      const r = await run(["envelope", "set", fund, "--file", file, ...g]);
      expect(r.err).toBe("");
      expect(JSON.parse(r.out)).toMatchObject({ envelope_id: `${fund}@v6` });
    });
  });
});
