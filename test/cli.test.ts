/**
 * The operator CLI, run in-process (`main(argv)`) against a real nats-server and an in-process
 * engine: exit codes, one-line errors, and the JSON each command prints.
 */
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { expectOneLineError, run } from "./support/cli.js";
import { loadConfig } from "../src/config/index.js";
import { CONSUMED_STREAMS } from "../src/contract/index.js";
import { startEngine, type Engine } from "../src/engine/index.js";
import type { NatsServerHandle } from "../src/bus/nats-server.js";
import { connectTest, startTestNats, waitFor } from "./support/nats.js";

/** A TCP port nothing listens on (bound, then released). */
function closedPort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => done(port));
    });
  });
}

describe("mts-risk CLI", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let dir: string;
  let g: string[];

  beforeAll(async () => {
    vi.stubEnv("RISK_LOG__LEVEL", "warn"); // the CLI's own logger (rebuild progress) stays quiet
    server = await startTestNats();
    dir = await mkdtemp(join(tmpdir(), "mts-cli-test-"));
    const stateDir = join(dir, "state");
    g = ["--nats-url", server.url, "--state-dir", stateDir];
    const { config } = loadConfig({ env: {}, flags: { "nats.url": server.url, "state.dir": stateDir } });
    engine = await startEngine({ config });
  });

  afterAll(async () => {
    await engine?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    vi.unstubAllEnvs();
  });

  it("rejects an unknown command with one line and exit 2", async () => {
    const r = await run(["frobnicate"]);
    expectOneLineError(r, 2);
    expect(r.err).toContain("frobnicate");
    expect(r.out).toBe("");
  });

  it("runs the benchmark as `mts-risk bench` (ENGINE.md), with its own help and one-line errors", async () => {
    const help = await run(["bench", "--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toContain("--quick");
    expect(help.out).toContain("apparatus,bus,several,quotefold,pipeline,scale,rss,soak,rebuild");
    const bad = await run(["bench", "--only", "bogus"]);
    expectOneLineError(bad, 2);
    expect(bad.err).toContain("unknown phase 'bogus'");
    // the built bin, as an operator runs it: one quick in-process phase, into a directory of ours
    const out = await mkdtemp(join(tmpdir(), "mts-cli-bench-"));
    try {
      const bin = fileURLToPath(new URL("../bin/mts-risk.js", import.meta.url));
      const r = spawnSync(process.execPath, [bin, "bench", "--quick", "--only", "pipeline", "--out", out], {
        encoding: "utf8",
        timeout: 120_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const file = (await readdir(out)).find((f) => f.endsWith("-quick.json"));
      expect(file).toBeDefined();
      const results = JSON.parse(await readFile(join(out, file!), "utf8")) as {
        pipeline?: { per_s?: number };
      };
      expect(results.pipeline?.per_s).toBeGreaterThan(0);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 150_000);

  it("exits after its one-line error when the URL's port accepts TCP and never speaks NATS", async () => {
    const silent = createServer(() => undefined); // accepts, says nothing
    await new Promise<void>((done) => silent.listen(0, "127.0.0.1", done));
    const addr = silent.address();
    const port = typeof addr === "object" && addr !== null ? addr.port : 0;
    try {
      const bin = fileURLToPath(new URL("../bin/mts-risk.js", import.meta.url));
      const r = await new Promise<{ code: number | null; err: string }>((done) => {
        const child = execFile(
          process.execPath,
          [bin, "--nats-url", `nats://127.0.0.1:${port}`, "--timeout", "1000", "status"],
          { encoding: "utf8", timeout: 60_000 },
          (_e, _out, err) => done({ code: child.exitCode, err }),
        );
      });
      expect(r.code, r.err).toBe(2); // null: killed by the 60 s timeout, still running
      expect(r.err).toMatch(/^mts-risk: cannot connect to NATS at [^\n]+\n$/);
    } finally {
      silent.close();
    }
  }, 90_000);

  it("prints help with exit 0", async () => {
    const r = await run(["check", "--help"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("--limit-price");
    expect(r.out).toContain("--nats-url"); // global options are shown on every command
  });

  it("refuses an envelope with an invalid field, naming its path (exit 2)", async () => {
    const file = join(dir, "bad.yaml");
    await writeFile(file, 'capital: "1000000"\nallowed_brokers: [paper]\nmax_position_pct: "ten"\n');
    const r = await run(["envelope", "set", "alpha", "--file", file, ...g]);
    expectOneLineError(r, 2);
    expect(r.err).toContain("max_position_pct");
  });

  it("refuses an envelope for the reserved fund `_` (exit 2, issue 8)", async () => {
    const file = join(dir, "reserved.yaml");
    await writeFile(file, 'capital: "1000000"\nallowed_brokers: [paper]\n');
    const r = await run(["envelope", "set", "_", "--file", file, ...g]);
    expectOneLineError(r, 2);
    expect(r.err).toContain("fund_id");
  });

  it("refuses an envelope version not newer than the fund's last (exit 1), answers the very same one as stored, and history lists the kept versions only", async () => {
    const file = (v: number, capital: string) => {
      const f = join(dir, `gamma-v${v}-${capital}.json`);
      return writeFile(f, JSON.stringify({ version: v, capital, allowed_brokers: ["paper"] })).then(() => f);
    };
    const v2 = await run(["envelope", "set", "gamma", "--file", await file(2, "2000000"), ...g]);
    expect(v2.code, v2.err).toBe(0);
    const older = await run(["envelope", "set", "gamma", "--file", await file(1, "5"), ...g]);
    expectOneLineError(older, 1);
    expect(older.err).toContain("gamma@v1 is not newer than v2");
    const equal = await run(["envelope", "set", "gamma", "--file", await file(2, "7"), ...g]);
    expectOneLineError(equal, 1);
    // the very same envelope again (a retry): answered as stored, nothing published
    const again = await run(["envelope", "set", "gamma", "--file", await file(2, "2000000"), ...g]);
    expect(again.code, again.err).toBe(0);
    const first = JSON.parse(v2.out) as { stream_seq: number };
    expect(JSON.parse(again.out)).toMatchObject({ envelope_id: "gamma@v2", stream_seq: first.stream_seq });
    // a stale version published by another publisher than this CLI: not listed (the engine ignores it)
    const nc = await connectTest(server.url);
    try {
      const js = (await import("@nats-io/jetstream")).jetstream(nc);
      await js.publish(
        "mts.v1.risk.envelope.updated.gamma",
        JSON.stringify({ fund_id: "gamma", version: 1, capital: "5" }),
      );
    } finally {
      await nc.close();
    }
    const h = await run(["envelope", "history", "gamma", ...g]);
    expect(h.code, h.err).toBe(0);
    const versions = h.out
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { version: number }).version);
    expect(versions).toEqual([2]);
  });

  it("sets envelopes, gets them back, and lists their history", async () => {
    const v1 = join(dir, "alpha-v1.json");
    await writeFile(
      v1,
      JSON.stringify({
        capital: "1000000",
        allowed_brokers: ["paper"],
        allowed_order_types: ["MARKET", "LIMIT"],
      }),
    );
    const s1 = await run(["envelope", "set", "alpha", "--file", v1, ...g]);
    expect(s1.err).toBe("");
    expect(s1.code).toBe(0);
    const set1 = JSON.parse(s1.out) as { envelope_id: string; stream_seq: unknown };
    expect(set1.envelope_id).toBe("alpha@v1");
    expect(typeof set1.stream_seq).toBe("number");

    await waitFor(async () => (await run(["envelope", "get", "alpha", ...g])).code === 0, {
      message: "envelope v1 applied",
    });

    // YAML, no version: the CLI asks the engine and publishes current + 1.
    const v2 = join(dir, "alpha-v2.yaml");
    await writeFile(
      v2,
      "fund_id: alpha\ncapital: 2000000\nallowed_brokers: [paper]\nallowed_order_types: [MARKET, LIMIT]\n" +
        "max_order_notional: 500000\n",
    );
    const s2 = await run(["envelope", "set", "alpha", "--file", v2, ...g]);
    expect(s2.err).toBe("");
    expect(JSON.parse(s2.out)).toMatchObject({ envelope_id: "alpha@v2" });

    const got = await waitFor(
      async () => {
        const r = await run(["envelope", "get", "alpha", ...g]);
        const e = r.code === 0 ? (JSON.parse(r.out) as Record<string, unknown>) : undefined;
        return e?.version === 2 ? e : undefined;
      },
      { message: "envelope v2 applied" },
    );
    expect(got).toMatchObject({
      fund_id: "alpha",
      version: 2,
      capital: "2000000",
      max_order_notional: "500000",
    });

    // Publishing the same version again with the same content is an idempotent retry.
    const again = join(dir, "alpha-v1-again.json");
    await writeFile(
      again,
      JSON.stringify({
        fund_id: "alpha",
        version: 1,
        capital: "1000000",
        allowed_brokers: ["paper"],
        allowed_order_types: ["MARKET", "LIMIT"],
      }),
    );
    const s3 = await run(["envelope", "set", "alpha", "--file", again, ...g]);
    expect(s3.code).toBe(0);
    expect(JSON.parse(s3.out)).toEqual(JSON.parse(s1.out));

    const old = await run(["envelope", "get", "alpha", "--version", "1", ...g]);
    expect(old.code).toBe(0);
    expect(JSON.parse(old.out)).toMatchObject({ version: 1, capital: "1000000" });

    const missing = await run(["envelope", "get", "nobody", ...g]);
    expectOneLineError(missing, 1);
    expect(missing.err).toContain("NOT_FOUND");

    const h = await run(["envelope", "history", "alpha", ...g]);
    expect(h.code).toBe(0);
    const rows = h.out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((r) => r.version)).toEqual([1, 2]);
    expect(rows.map((r) => r.capital)).toEqual(["1000000", "2000000"]);
    for (const row of rows) {
      expect(row.seq).toEqual(expect.any(Number));
      expect(Date.parse(String(row.time))).not.toBeNaN();
    }
  });

  it("checks orders: approved (exit 0) and rejected for a broker not allowed (exit 1)", async () => {
    const order = [
      "--fund",
      "alpha",
      "--symbol",
      "AAPL",
      "--side",
      "buy",
      "--qty",
      "10",
      "--limit-price",
      "190.12",
    ];
    const ok = await run(["check", ...order, ...g]);
    expect(ok.err).toBe("");
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ approved: true, rejecting_gate: "", envelope_id: "alpha@v2" });

    const no = await run(["check", ...order, "--broker", "ibkr", ...g]);
    expect(no.code).toBe(1);
    expect(JSON.parse(no.out)).toMatchObject({
      approved: false,
      rejecting_gate: "static",
      rejection_code: "BROKER_NOT_ALLOWED",
    });

    const proto = await run(["check", ...order, "--protobuf", ...g]);
    expect(proto.code).toBe(0);
    expect(JSON.parse(proto.out)).toMatchObject({ approved: true });
  });

  it("prints the engine status, and rebuild reproduces its state digest", async () => {
    // Wait until the engine has applied everything in the streams (its own journaled decisions too).
    const nc = await connectTest(server.url);
    let status: Record<string, unknown> | undefined;
    try {
      const jsm = await jetstreamManager(nc);
      status = await waitFor(
        async () => {
          const r = await run(["status", ...g]);
          if (r.code !== 0) return undefined;
          const s = JSON.parse(r.out) as { cursors: Record<string, number> } & Record<string, unknown>;
          for (const stream of CONSUMED_STREAMS) {
            const last = (await jsm.streams.info(stream)).state.last_seq;
            if ((s.cursors[stream] ?? 0) < last) return undefined;
          }
          return s;
        },
        { message: "engine caught up" },
      );
    } finally {
      await nc.close();
    }
    expect(status?.ready).toBe(true);
    expect(status?.state_digest).toMatch(/^[0-9a-f]{64}$/);

    await engine.flush();
    const rb = await run(["rebuild", ...g]);
    expect(rb.code).toBe(0);
    const result = JSON.parse(rb.out) as Record<string, unknown>;
    expect(result.state_digest).toBe(status?.state_digest);
    expect(result.snapshot).toBe(join(dir, "state", "rebuild.sqlite"));

    // --install is refused while an engine answers.
    const inst = await run(["rebuild", "--install", ...g]);
    expectOneLineError(inst, 1);
  });

  it("fails with one line (exit 2) when no NATS server is reachable", async () => {
    const port = await closedPort();
    const r = await run([
      "check",
      "--fund",
      "alpha",
      "--symbol",
      "AAPL",
      "--side",
      "BUY",
      "--qty",
      "1",
      "--limit-price",
      "1",
      "--nats-url",
      `nats://127.0.0.1:${port}`,
      "--timeout",
      "500",
    ]);
    expectOneLineError(r, 2);
    expect(r.out).toBe("");
  });
});
