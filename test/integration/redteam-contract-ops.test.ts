/**
 * Red team (wire contract, CONTRACT.md "Subjects" last paragraph and "Operations"), black-box
 * through the `mts-risk` bin: `mts-risk serve` on a fresh nats-server creates every stream with the
 * contract's subjects (OMS_ORDERS exactly the five events, OMS_INTENTS the two subjects, none
 * overlapping), leaves a stream it does not own as it was, never recreates one it owns; HTTP
 * /metrics names and labels, /healthz, /readyz (200, then 503 with a JSON reason).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, envelope, order, readStream } from "../support/engine.js";

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

/** True when two NATS subject filters can match one subject. */
function overlap(a: string, b: string): boolean {
  const x = a.split(".");
  const y = b.split(".");
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === ">" || q === ">") return p !== undefined && q !== undefined;
    if (p === undefined || q === undefined) return p === q;
    if (p !== "*" && q !== "*" && p !== q) return false;
  }
}

/** Runs the bin; never rejects. */
function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, RISK_LOG__LEVEL: "warn" }, timeout: 30_000 },
      (e, out, err) => resolve({ code: e ? (typeof e.code === "number" ? e.code : 1) : 0, out, err }),
    );
  });
}

async function get(url: string): Promise<{ status: number; text: string; type: string }> {
  const r = await fetch(url);
  return { status: r.status, text: await r.text(), type: r.headers.get("content-type") ?? "" };
}

describe("red team contract: mts-risk serve on a fresh server, streams, HTTP", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let proc: ChildProcess | undefined;
  let base = "";
  let stderr = "";
  const stateDir = mkdtempSync(join(tmpdir(), "mts-rt-contract-ops-"));
  const ORDERS_AGE_NS = 3_600_000_000_000; // the OMS team's own retention: 1 h

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    jsm = await jetstreamManager(nc);
    // another team's stream, there before the engine, with its own retention
    await jsm.streams.add({
      name: "OMS_ORDERS",
      subjects: [
        "mts.v1.oms.order.accepted.>",
        "mts.v1.oms.order.cancelled.>",
        "mts.v1.oms.order.rejected.>",
        "mts.v1.oms.order.expired.>",
        "mts.v1.oms.order.done.>",
      ],
      max_age: ORDERS_AGE_NS,
    });
    // a stream the engine owns, already holding a message: updated at most, never recreated
    await jsm.streams.add({
      name: "RISK_CONTROL",
      subjects: ["mts.v1.risk.halt.>"],
      max_msgs_per_subject: 5,
    });
    await new Bus(nc).control("mts.v1.risk.halt.pre", {
      fund_id: "pre",
      severity: "MANUAL",
      reason: "before the engine",
      at: "2026-11-21T14:30:00Z",
      by: "ops",
    });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    proc = spawn(process.execPath, [BIN, "--nats-url", server.url, "--state-dir", stateDir, "serve"], {
      env: { ...process.env, RISK_HTTP__PORT: String(port), RISK_LOG__LEVEL: "warn" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    proc.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
    await waitFor(async () => (await get(`${base}/readyz`)).status === 200, {
      timeoutMs: 30_000,
      message: "mts-risk serve ready",
    }).catch((e: unknown) => {
      throw new Error(`${String(e)}; stderr: ${stderr}`);
    });
  }, 60_000);
  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc!.once("exit", r));
      proc.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (proc.exitCode === null) proc.kill("SIGKILL");
    }
    await nc?.close();
    await server?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("every stream of the contract's table exists with the subjects it lists", async () => {
    const want: Record<string, string> = {
      "mts.v1.risk.decision.alpha": "RISK_DECISIONS",
      "mts.v1.risk.decision._": "RISK_DECISIONS",
      "mts.v1.risk.envelope.updated.alpha": "RISK_ENVELOPES",
      "mts.v1.refdata.instrument.AAPL": "REFDATA",
      "mts.v1.quote.AAPL": "QUOTES",
      "mts.v1.fill.alpha.AAPL": "FILLS",
      "mts.v1.oms.order.accepted.alpha": "OMS_ORDERS",
      "mts.v1.oms.order.cancelled.alpha": "OMS_ORDERS",
      "mts.v1.oms.order.rejected.alpha": "OMS_ORDERS",
      "mts.v1.oms.order.expired.alpha": "OMS_ORDERS",
      "mts.v1.oms.order.done.alpha": "OMS_ORDERS",
      "mts.v1.oms.order.submit.alpha": "OMS_INTENTS",
      "mts.v1.oms.cancel_all.alpha": "OMS_INTENTS",
      "mts.v1.risk.halt.alpha": "RISK_CONTROL",
      "mts.v1.risk.resume.alpha": "RISK_CONTROL",
      "mts.v1.risk.pnl.baseline.alpha": "RISK_CONTROL",
      "mts.v1.risk.alert.drift.alpha": "RISK_CONTROL",
      "mts.v1.risk.stop.armed.alpha": "RISK_CONTROL",
    };
    const got: Record<string, string> = {};
    for (const s of Object.keys(want))
      got[s] = await jsm.streams.find(s).catch((e: unknown) => `none (${String(e)})`);
    expect(got).toEqual(want);
    const intents = (await jsm.streams.info("OMS_INTENTS")).config.subjects;
    expect([...intents].sort()).toEqual(["mts.v1.oms.cancel_all.>", "mts.v1.oms.order.submit.>"]);
  });

  it("OMS_ORDERS takes exactly the five events: nothing else under mts.v1.oms.order is captured", async () => {
    for (const s of ["mts.v1.oms.order.filled.alpha", "mts.v1.oms.order.new.alpha", "mts.v1.oms.order.alpha"])
      await expect(jsm.streams.find(s), s).rejects.toThrow();
  });

  it("no two streams' subjects overlap", async () => {
    const all: [string, string][] = [];
    for await (const si of jsm.streams.list())
      for (const s of si.config.subjects ?? []) all.push([si.config.name, s]);
    const clash: string[] = [];
    for (let i = 0; i < all.length; i++)
      for (let j = i + 1; j < all.length; j++)
        if (all[i]![0] !== all[j]![0] && overlap(all[i]![1], all[j]![1]))
          clash.push(`${all[i]![0]}:${all[i]![1]} x ${all[j]![0]}:${all[j]![1]}`);
    expect(clash).toEqual([]);
  });

  it("retention as the table says: REFDATA last value per symbol, RISK_ENVELOPES last 100 per fund, QUOTES bounded per symbol and by age", async () => {
    const cfg = async (n: string) => (await jsm.streams.info(n)).config;
    expect((await cfg("REFDATA")).max_msgs_per_subject).toBe(1);
    expect((await cfg("RISK_ENVELOPES")).max_msgs_per_subject).toBe(100);
    const q = await cfg("QUOTES");
    expect(q.max_msgs_per_subject).toBeGreaterThan(0);
    expect(q.max_age).toBeGreaterThan(0);
  });

  it("an existing stream the engine does not own (OMS_ORDERS) is not updated", async () => {
    expect((await jsm.streams.info("OMS_ORDERS")).config.max_age).toBe(ORDERS_AGE_NS);
  });

  it("an existing stream it owns (RISK_CONTROL) is never recreated: its messages stay", async () => {
    const info = await jsm.streams.info("RISK_CONTROL");
    const first = await jsm.streams.getMessage("RISK_CONTROL", { seq: 1 });
    expect(first!.subject).toBe("mts.v1.risk.halt.pre");
    expect(info.config.subjects).toContain("mts.v1.risk.halt.>");
    expect(info.config.subjects).toContain("mts.v1.risk.pnl.baseline.>");
  });

  it("/healthz 200; /readyz 200; /metrics in Prometheus text format; GET / the dashboard", async () => {
    expect((await get(`${base}/healthz`)).status).toBe(200);
    expect((await get(`${base}/readyz`)).status).toBe(200);
    const m = await get(`${base}/metrics`);
    expect(m.status).toBe(200);
    expect(m.type).toMatch(/^(text\/plain|application\/openmetrics-text)/);
    const d = await get(`${base}/`);
    expect(d.status).toBe(200);
    expect(d.type).toMatch(/^text\/html/);
  });

  it("/metrics: every metric 'Operations' lists, riskengine_ prefix, with its labels", async () => {
    const bus = new Bus(nc);
    const jsm2 = await jetstreamManager(nc);
    await bus.instrument({ symbol: "AAPL", asset_class: "equity" });
    await bus.envelope(envelope("mx", { max_position_pct: "0.10" }));
    await waitFor(async () => (await bus.check(order({ fund_id: "mx" }))).approved === true, {
      message: "an approval",
    });
    await bus.check(order({ fund_id: "mx", broker: "nope" }));
    void jsm2;
    const text = (await get(`${base}/metrics`)).text;
    const samples = text.split("\n").filter((l) => l.startsWith("riskengine_"));
    const has = (re: RegExp) => samples.some((l) => re.test(l));
    const missing: string[] = [];
    const want: [string, RegExp][] = [
      [
        "check latency histogram by outcome",
        /^riskengine_check_latency_seconds_bucket\{[^}]*outcome="approved"/,
      ],
      [
        "decisions by gate and code",
        /^riskengine_decisions_total\{(?=[^}]*gate="static")(?=[^}]*code="BROKER_NOT_ALLOWED")/,
      ],
      ["journal write latency", /^riskengine_journal_write_seconds_(bucket|count)/],
      ["stream lag per stream", /^riskengine_stream_lag\w*\{[^}]*stream="FILLS"/],
      ["funds halted", /^riskengine_funds_halted\b/],
      ["stops armed", /^riskengine_stops_armed\b/],
      ["stops triggered", /^riskengine_stops_triggered\w*\b/],
      ["alerts by kind", /^riskengine_alerts_total\{[^}]*kind="/],
      ["funds owned", /^riskengine_funds_owned\b/],
      ["limit usage", /^riskengine_limit_usage_ratio\{(?=[^}]*fund_id="mx")(?=[^}]*measure="position")/],
    ];
    for (const [what, re] of want) if (!has(re)) missing.push(what);
    if (!/^# TYPE riskengine_reconciler_drift\w* /m.test(text)) missing.push("reconciler drift");
    if (!/^# TYPE riskengine_check_latency_seconds histogram/m.test(text))
      missing.push("latency is a histogram");
    expect(missing).toEqual([]);
  });

  it("mts-risk halt / halt --kill / resume publish Halt, cancel_all and Resume with exactly the contract's fields", async () => {
    const g = ["--nats-url", server.url];
    const F = "opsf";
    await new Bus(nc).envelope(envelope(F));
    expect((await cli([...g, "halt", F, "--reason", "red team"])).code).toBe(0);
    expect((await cli([...g, "halt", F, "--reason", "red team kill", "--kill"])).code).toBe(0);
    const halts = await waitFor(
      async () => {
        const h = await readStream<Record<string, unknown>>(nc, "RISK_CONTROL", `mts.v1.risk.halt.${F}`);
        return h.length >= 2 ? h : undefined;
      },
      { message: "two halts" },
    );
    for (const h of halts!) {
      expect(Object.keys(h.data).sort()).toEqual(["at", "by", "fund_id", "reason", "severity"]);
      expect(String(h.data.at)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    }
    expect(halts!.map((h) => h.data.severity)).toEqual(["MANUAL", "KILL_SWITCH"]);
    const cancel = await waitFor(
      async () =>
        (await readStream<Record<string, unknown>>(nc, "OMS_INTENTS", `mts.v1.oms.cancel_all.${F}`))[0],
      {
        message: "cancel_all",
      },
    );
    expect(Object.keys(cancel!.data).sort()).toEqual(["at", "fund_id", "reason"]);
    // the engine must have applied the halts before resume accepts (it judges from RISK_CONTROL)
    const r = await waitFor(
      async () => {
        const x = await cli([...g, "resume", F, "--operator", "alice", "--reason", "all clear"]);
        return x.code === 0 ? x : undefined;
      },
      { message: "resume accepted", timeoutMs: 20_000 },
    );
    expect(r!.code).toBe(0);
    const resumes = await readStream<Record<string, unknown>>(nc, "RISK_CONTROL", `mts.v1.risk.resume.${F}`);
    expect(resumes.length).toBe(1);
    expect(Object.keys(resumes[0]!.data).sort()).toEqual(["at", "fund_id", "operator", "reason"]);
    expect(resumes[0]!.data).toMatchObject({ fund_id: F, operator: "alice", reason: "all clear" });
  }, 60_000);

  it("mts-risk status --all lists the engine with what it owns and its lag", async () => {
    const r = await cli(["--nats-url", server.url, "status", "--all"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/owned|owns/);
    expect(r.out).toMatch(/lag/);
    const st = await cli(["--nats-url", server.url, "status"]);
    const s = JSON.parse(st.out) as Record<string, unknown>;
    for (const k of ["instance", "ready", "halted_funds", "cursors", "state_digest", "uptime_s", "owned"])
      expect(s, k).toHaveProperty(k);
  });

  it("/readyz is 503 with the reason as JSON when the engine loses NATS, /healthz stays 200", async () => {
    await server.kill();
    try {
      const r = await waitFor(
        async () => {
          const x = await get(`${base}/readyz`);
          return x.status === 503 ? x : undefined;
        },
        { timeoutMs: 20_000, message: "readyz 503" },
      );
      const body = JSON.parse(r!.text) as Record<string, unknown>;
      expect(r!.type).toMatch(/^application\/json/);
      expect(body.ready).toBe(false);
      expect(typeof body.reason).toBe("string");
      expect((body.reason as string).length).toBeGreaterThan(0);
      expect((await get(`${base}/healthz`)).status).toBe(200);
    } finally {
      await server.restart();
    }
    await waitFor(async () => (await get(`${base}/readyz`)).status === 200, {
      timeoutMs: 30_000,
      message: "ready again",
    });
  }, 60_000);
});
