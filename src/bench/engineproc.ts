/** The engine under test, as a separate process: `node bin/mts-risk.js serve`, as an operator runs it. */
import type { NatsConnection } from "@nats-io/transport-node";
import { readFileSync } from "node:fs";
import { Subjects } from "../contract/subjects.js";
import { type NodeChild, scriptPath, spawnNode } from "./proc.js";
import { sleep } from "./util.js";

export interface EngineProcess {
  child: NodeChild;
  /** Wall-clock time of the spawn (Date.now()). */
  spawnedAt: number;
  logFile: string;
}

export function spawnEngine(o: {
  url: string;
  stateDir: string;
  logFile: string;
  cpuProfileDir?: string | undefined;
  /** The operations HTTP port: 0 (the default here) picks a free one, so engines never collide. */
  httpPort?: number;
}): EngineProcess {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("RISK_") && k !== "NATS_URL" && k !== "LOG_LEVEL") env[k] = v;
  }
  // No broker answers position requests here: the reconciler would only raise stale alerts.
  env.RISK_BROKER_EXIT_RECONCILER__ENABLED = "false";
  env.RISK_LOG__LEVEL = "info";
  env.RISK_HTTP__PORT = String(o.httpPort ?? 0);
  // BENCH_ENGINE_ENV: more settings for the engine, `K=V` separated by spaces (a diagnosis, e.g.
  // "RISK_STATE__FLUSH_INTERVAL_MS=60000"); the bench's own settings above may be overridden too
  for (const kv of process.env["BENCH_ENGINE_ENV"]?.split(" ").filter(Boolean) ?? []) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const spawnedAt = Date.now();
  const child = spawnNode(
    scriptPath("../../bin/mts-risk.js"),
    ["serve", "--nats-url", o.url, "--state-dir", o.stateDir],
    {
      env,
      logFile: o.logFile,
      // BENCH_ENGINE_NODE_ARGS: more node flags for the engine (a diagnosis, e.g. "--cpu-prof-interval 250")
      nodeArgs: [
        ...(o.cpuProfileDir ? ["--cpu-prof", "--cpu-prof-dir", o.cpuProfileDir] : []),
        ...(process.env["BENCH_ENGINE_NODE_ARGS"]?.split(" ").filter(Boolean) ?? []),
      ],
    },
  );
  return { child, spawnedAt, logFile: o.logFile };
}

interface Status {
  ready?: boolean;
  cursors?: Record<string, number>;
}

export async function engineStatus(nc: NatsConnection): Promise<Status | undefined> {
  try {
    // without the digest: it reads the whole state (the bench polls this while the engine works)
    return (await nc.request(Subjects.status, '{"digest":false}', { timeout: 2000 })).json<Status>();
  } catch {
    return undefined;
  }
}

/** Polls mts.v1.risk.status until ready and (optionally) caught up to the given stream sequences. */
export async function waitStatus(
  nc: NatsConnection,
  engine: EngineProcess,
  o: { cursors?: Record<string, number>; timeoutMs?: number } = {},
): Promise<Status> {
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  let exited = false;
  void engine.child.exited.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`the engine exited; see ${engine.logFile}`);
    const s = await engineStatus(nc);
    const behind = Object.entries(o.cursors ?? {}).some(([k, seq]) => (s?.cursors?.[k] ?? 0) < seq);
    if (s?.ready && !behind) return s;
    if (Date.now() > deadline) throw new Error(`the engine was not ready in time; see ${engine.logFile}`);
    await sleep(250);
  }
}

/**
 * A readiness probe cheaper than status (which digests the whole state): a check for fund f0 with
 * a broker its envelope does not allow. Before the check service is up: no responders; while
 * catching up: STATE_NOT_READY; once ready: the static gate's rejection. Nothing is reserved.
 */
export function probeOrder(n: number): string {
  return JSON.stringify({
    order_id: `probe-${n}`,
    idempotency_key: `probe-${Date.now()}-${n}`,
    fund_id: "f0",
    broker: "bench-probe",
    symbol: "S0",
    side: "BUY",
    order_type: "LIMIT",
    quantity: "1",
    limit_price: "100",
  });
}

/** Milliseconds from `sinceWallMs` until the probe is answered by a ready engine. */
export async function waitProbeReady(
  nc: NatsConnection,
  engine: EngineProcess,
  subject: string,
  timeoutMs = 120_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let n = 0;
  let exited = false;
  void engine.child.exited.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`the engine exited; see ${engine.logFile}`);
    try {
      const m = await nc.request(subject, probeOrder(++n), { timeout: 1000 });
      const d = m.json<{ rejection_code?: string }>();
      if (d.rejection_code && d.rejection_code !== "STATE_NOT_READY") return Date.now() - engine.spawnedAt;
    } catch {
      // no responders yet, or a timeout while it loads
    }
    if (Date.now() > deadline) throw new Error(`the engine was not ready in time; see ${engine.logFile}`);
    await sleep(5);
  }
}

/** Until a probe is answered within `ms`: the target has worked off any backlog. */
export async function quiesce(
  nc: NatsConnection,
  subject: string,
  ms = 20,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let n = 0;
  for (;;) {
    const t0 = performance.now();
    try {
      await nc.request(subject, probeOrder(1_000_000 + ++n), { timeout: 10_000 });
      if (performance.now() - t0 < ms) return;
    } catch {
      // keep probing
    }
    if (Date.now() > deadline) throw new Error(`${subject} still busy after ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** Wall-clock offsets (ms after spawn) of the engine's "snapshot loaded" and "ready" log lines. */
export function startupMarks(engine: EngineProcess): Record<string, number> {
  const marks: Record<string, number> = {};
  let text = "";
  try {
    text = readFileSync(engine.logFile, "utf8");
  } catch {
    return marks;
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const r = JSON.parse(line) as { msg?: string; time?: string | number };
      const t = typeof r.time === "string" ? Date.parse(r.time) : Number(r.time);
      if (!Number.isFinite(t) || t < engine.spawnedAt) continue;
      if (r.msg === "snapshot loaded" || r.msg === "streams provisioned" || r.msg === "ready") {
        marks[r.msg.replace(/ /g, "_")] ??= t - engine.spawnedAt;
      }
    } catch {
      // not a log record
    }
  }
  return marks;
}
