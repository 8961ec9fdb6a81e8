/**
 * Fault-injection helpers: the engine as a child process (`mts-risk serve`, compiled dist/), killed
 * with SIGKILL and restarted on the same state dir; status polling; a clean `mts-risk rebuild` in a
 * child process; a seeded RNG; the ledger of published fills the positions must equal.
 */
import Database from "better-sqlite3";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  watch,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { DecisionRecord } from "../../src/contract/records.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { CONSUMED_STREAMS, Subjects } from "../../src/contract/subjects.js";
import { openSnapshot } from "../../src/state/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = join(REPO, "bin", "mts-risk.js");

// ---------------------------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------------------------

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(xs: readonly T[]): T;
  /** `k` distinct integers of [lo, hi], ascending. */
  sample(k: number, lo: number, hi: number): number[];
}

/** mulberry32: small, fast, and the same sequence for the same seed on every platform. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick<T>(xs: readonly T[]): T {
      if (xs.length === 0) throw new Error("pick from an empty list");
      return xs[int(0, xs.length - 1)] as T;
    },
    sample(k, lo, hi) {
      if (hi - lo + 1 < k) throw new Error(`cannot pick ${k} distinct integers of [${lo}, ${hi}]`);
      const out = new Set<number>();
      while (out.size < k) out.add(int(lo, hi));
      return [...out].sort((x, y) => x - y);
    },
  };
}

/** The run's seed: CRASH_SEED when set (to reproduce a failure), else a fresh one. */
export function testSeed(): number {
  const env = process.env["CRASH_SEED"];
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n)) throw new Error(`CRASH_SEED must be an integer, got ${env}`);
    return n >>> 0;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

// ---------------------------------------------------------------------------------------------
// The engine as a child process
// ---------------------------------------------------------------------------------------------

/** The child's environment: ours without RISK_* / NATS_URL (they would change its config). */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("RISK_") || k === "NATS_URL" || k === "NODE_OPTIONS") continue;
    env[k] = v;
  }
  // LOG_LEVEL is what pino falls back to; the CLI passes config log.level, so set that too.
  return {
    ...env,
    LOG_LEVEL: process.env["ENGINE_LOG_LEVEL"] ?? "warn",
    RISK_LOG__LEVEL: process.env["ENGINE_LOG_LEVEL"] ?? "warn",
    ...extra,
  };
}

function assertBuilt(): void {
  if (!existsSync(join(REPO, "dist", "cli", "main.js"))) {
    throw new Error("dist/ is not built: run `npm run build` (npm test does it) before these tests");
  }
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface EngineProcessOptions {
  natsUrl: string;
  stateDir: string;
  /** stdout and stderr of every start are appended here. */
  logFile: string;
  /** Extra environment for every start (e.g. RISK_STATE__FLUSH_INTERVAL_MS). */
  env?: Record<string, string>;
}

/**
 * `node bin/mts-risk.js serve --nats-url URL --state-dir DIR` as a child process, one at a time.
 * Every exit that this object did not cause (SIGKILL, SIGTERM) is recorded in `unexpectedExits`.
 */
export class EngineProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<ExitInfo> = Promise.resolve({ code: 0, signal: null });
  private readonly expected = new WeakSet<ChildProcess>();
  starts = 0;
  kills = 0;
  readonly unexpectedExits: string[] = [];

  constructor(readonly o: EngineProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(env: Record<string, string> = {}): number {
    if (this.running) throw new Error(`engine already running (pid ${this.pid ?? "?"})`);
    assertBuilt();
    const fd = openSync(this.o.logFile, "a");
    let child: ChildProcess;
    try {
      child = spawn(
        process.execPath,
        [BIN, "serve", "--nats-url", this.o.natsUrl, "--state-dir", this.o.stateDir],
        { cwd: REPO, env: childEnv({ ...this.o.env, ...env }), stdio: ["ignore", fd, fd] },
      );
    } finally {
      closeSync(fd);
    }
    if (child.pid === undefined) throw new Error("could not spawn the engine");
    this.child = child;
    this.starts++;
    this.exited = new Promise<ExitInfo>((done) => {
      child.once("error", (err) => {
        this.unexpectedExits.push(`pid ${child.pid ?? "?"}: spawn error ${err.message}`);
        done({ code: null, signal: null });
      });
      child.once("exit", (code, signal) => {
        if (!this.expected.has(child)) {
          this.unexpectedExits.push(
            `pid ${child.pid ?? "?"} exited by itself: code ${code} signal ${signal}`,
          );
        }
        done({ code, signal });
      });
    });
    return child.pid;
  }

  /** Send SIGKILL now, synchronously (from a watcher callback); `whenExited()` waits for it. */
  killNow(): void {
    const c = this.child;
    if (!c || !this.running || this.expected.has(c)) return; // not twice for one process
    this.expected.add(c);
    this.kills++;
    c.kill("SIGKILL");
  }

  whenExited(): Promise<ExitInfo> {
    return this.exited;
  }

  /** SIGSTOP / SIGCONT: the process is frozen, its sockets stay open. */
  freeze(): void {
    if (this.running) this.child!.kill("SIGSTOP");
  }

  thaw(): void {
    if (this.running) this.child!.kill("SIGCONT");
  }

  /** kill -9 and wait until the process is gone. */
  async kill9(): Promise<ExitInfo> {
    this.killNow();
    return this.exited;
  }

  /** SIGTERM (graceful: final snapshot flush), SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 15_000): Promise<ExitInfo> {
    const c = this.child;
    if (!c || !this.running) return this.exited;
    this.expected.add(c);
    c.kill("SIGTERM");
    const timer = setTimeout(() => c.kill("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Every line the engine processes wrote that `keep` selects (for failure messages). */
  logLines(keep: (line: string) => boolean): string[] {
    try {
      return readFileSync(this.o.logFile, "utf8").split("\n").filter(keep);
    } catch {
      return [];
    }
  }

  /** The last lines the engine processes wrote (for failure messages). */
  logTail(lines = 40): string {
    try {
      return readFileSync(this.o.logFile, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no engine log)";
    }
  }
}

/**
 * Calls `engine.killNow()` at the `writes`-th change the engine makes to its snapshot files
 * (snapshot.sqlite, -wal, -shm), seen through fs.watch: i.e. during or right after a flush.
 */
export async function killOnSnapshotWrite(engine: EngineProcess, writes: number, timeoutMs = 30_000) {
  let seen = 0;
  let done!: () => void;
  let fail!: (e: Error) => void;
  const fired = new Promise<void>((res, rej) => {
    done = res;
    fail = rej;
  });
  const watcher = watch(engine.o.stateDir, (_event, file) => {
    if (!file?.startsWith("snapshot.sqlite")) return;
    if (++seen < writes) return;
    engine.killNow();
    watcher.close();
    done();
  });
  const timer = setTimeout(() => {
    watcher.close();
    fail(new Error(`only ${seen} of ${writes} snapshot writes within ${timeoutMs} ms`));
  }, timeoutMs);
  try {
    await fired;
  } finally {
    clearTimeout(timer);
  }
  await engine.whenExited();
}

/**
 * Bytes waiting in the kernel receive queues of a process's TCP sockets (Linux /proc), i.e. what
 * it has not read yet; undefined where /proc is not available.
 */
export function unreadBytes(pid: number): number | undefined {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSafe(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    }
    let total = 0;
    for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      if (!existsSync(table)) continue;
      for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f.length < 10 || !inodes.has(f[9]!)) continue;
        total += parseInt(f[4]!.split(":")[1]!, 16);
      }
    }
    return total;
  } catch {
    return undefined;
  }
}

function readlinkSafe(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return "";
  }
}

// ---------------------------------------------------------------------------------------------
// Status, settling, rebuild
// ---------------------------------------------------------------------------------------------

export interface StatusReply {
  instance: string;
  ready: boolean;
  cursors: Record<string, number>;
  state_digest: string;
  halted_funds: unknown[];
  /** Partitions this engine owns (decides) now. */
  owned?: number;
}

export async function requestStatus(nc: NatsConnection, timeoutMs = 2000): Promise<StatusReply> {
  const m = await nc.request(Subjects.status, "{}", { timeout: timeoutMs });
  return m.json<StatusReply>();
}

/** The engine's instance id is `<hostname>-<pid>`: an answer from this very process. */
function fromProcess(s: StatusReply, engine: EngineProcess): boolean {
  return engine.pid !== undefined && s.instance.endsWith(`-${engine.pid}`);
}

async function pollStatus(
  nc: NatsConnection,
  engine: EngineProcess,
  until: (s: StatusReply) => boolean | Promise<boolean>,
  timeoutMs: number,
  message: string,
): Promise<StatusReply> {
  type Polled = { dead: true } | { status: StatusReply } | undefined;
  const r = await waitFor<Polled>(
    async () => {
      if (!engine.running) return { dead: true };
      const s = await requestStatus(nc, 1000);
      return fromProcess(s, engine) && (await until(s)) ? { status: s } : undefined;
    },
    { timeoutMs, intervalMs: 50, message },
  );
  if (r === undefined || "dead" in r)
    throw new Error(`the engine exited while waiting (${message})\n${engine.logTail()}`);
  return r.status;
}

/** Until `mts.v1.risk.status` answers ready from this process. */
export function waitEngineReady(nc: NatsConnection, engine: EngineProcess, timeoutMs = 60_000) {
  return pollStatus(nc, engine, (s) => s.ready, timeoutMs, "engine ready");
}

/**
 * Until the engine owns every partition: ready (caught up) does not mean its leases are taken and
 * its funds fenced; a test that then stops the bus must not catch it half way.
 */
export function waitEngineOwnsAll(
  nc: NatsConnection,
  engine: EngineProcess,
  partitions = 64,
  timeoutMs = 60_000,
) {
  return pollStatus(
    nc,
    engine,
    (s) => s.ready && s.owned === partitions,
    timeoutMs,
    "engine owns every partition",
  );
}

/** Last sequence of every consumed stream that exists (0 when empty), as the follower measures it. */
export async function streamTargets(jsm: JetStreamManager): Promise<Record<string, number>> {
  const names = new Set<string>();
  for await (const n of jsm.streams.names()) names.add(n);
  const out: Record<string, number> = {};
  for (const s of CONSUMED_STREAMS) {
    if (!names.has(s)) continue;
    const info = await jsm.streams.info(s);
    out[s] = info.state.messages === 0 ? 0 : info.state.last_seq;
  }
  return out;
}

function reached(cursors: Record<string, number>, targets: Record<string, number>): boolean {
  return Object.entries(targets).every(([s, seq]) => (cursors[s] ?? 0) >= seq);
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * Until the engine is ready and has applied every consumed stream up to its last sequence, with
 * nothing published meanwhile: the status returned describes exactly the streams as they are.
 */
export async function waitSettled(
  nc: NatsConnection,
  jsm: JetStreamManager,
  engine: EngineProcess,
  timeoutMs = 90_000,
): Promise<StatusReply> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const before = await streamTargets(jsm);
    const s = await pollStatus(
      nc,
      engine,
      (st) => st.ready && reached(st.cursors, before),
      Math.max(1000, deadline - Date.now()),
      `engine applied every stream up to ${JSON.stringify(before)}`,
    );
    const after = await streamTargets(jsm);
    if (sameJson(before, after)) return s;
    if (Date.now() > deadline) throw new Error("streams never stopped growing");
  }
}

export interface RebuildReply {
  state_digest: string;
  events: number;
  invalid: number;
  cursors: Record<string, number>;
  snapshot: string;
}

const execFileP = promisify(execFile);

/** `mts-risk rebuild --out FILE` in a child process, on a fresh state dir. */
export async function rebuildCli(natsUrl: string, out: string): Promise<RebuildReply> {
  assertBuilt();
  const stateDir = mkdtempSync(join(tmpdir(), "mts-fault-rb-"));
  try {
    const { stdout } = await execFileP(
      process.execPath,
      [BIN, "rebuild", "--nats-url", natsUrl, "--state-dir", stateDir, "--out", out],
      { cwd: REPO, env: childEnv(), maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
    );
    return JSON.parse(stdout) as RebuildReply;
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/**
 * The settled live status and a clean rebuild of the same stream prefix (same cursors). Retries
 * when something was published in between (a worker of the live engine), up to `attempts` times.
 */
export async function liveAndRebuild(
  h: Harness,
  attempts = 4,
): Promise<{ live: StatusReply; rebuilt: RebuildReply }> {
  let last: { live: StatusReply; rebuilt: RebuildReply } | undefined;
  for (let i = 0; i < attempts; i++) {
    const live = await waitSettled(h.nc, h.jsm, h.engine);
    const rebuilt = await rebuildCli(h.server.url, join(h.dir, `rebuilt-${++h.rebuilds}.sqlite`));
    last = { live, rebuilt };
    if (sameJson(sortKeys(live.cursors), sortKeys(rebuilt.cursors))) return last;
  }
  return last!;
}

function sortKeys(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}

// ---------------------------------------------------------------------------------------------
// Fills published, and the positions they must add up to
// ---------------------------------------------------------------------------------------------

export interface FillBody {
  fill_id: string;
  order_id: string;
  fund_id: string;
  broker: string;
  symbol: string;
  side: "BUY" | "SELL";
  quantity: string;
  price: string;
  fees: string;
  timestamp: string;
}

/** Every fill the stream stored (by sequence); positions = the first occurrence of each fill_id. */
export class FillLedger {
  private readonly stored: { seq: number; fill: FillBody }[] = [];
  private readonly ids = new Set<string>();
  /** Publications the server dropped as duplicates (same Nats-Msg-Id). */
  serverDuplicates = 0;
  /** Duplicates that reached the stream (another Nats-Msg-Id): the engine must skip them by fill_id. */
  streamDuplicates = 0;

  get unique(): number {
    return this.ids.size;
  }

  /** Publishes a fill with Nats-Msg-Id `msgID` (default: its fill_id) and records what was stored. */
  async publish(js: JetStreamClient, fill: FillBody, msgID = fill.fill_id): Promise<void> {
    const ack = await js.publish(Subjects.fill(fill.fund_id, fill.symbol), JSON.stringify(fill), { msgID });
    if (ack.duplicate) {
      this.serverDuplicates++;
      return;
    }
    if (this.ids.has(fill.fill_id)) this.streamDuplicates++;
    this.ids.add(fill.fill_id);
    this.stored.push({ seq: ack.seq, fill });
  }

  /** Net quantity per `fund|symbol` over the stored fills with sequence ≤ `upTo`, each fill_id once. */
  expected(upTo = Number.POSITIVE_INFINITY): { positions: Map<string, number>; unique: number } {
    const seen = new Set<string>();
    const positions = new Map<string, number>();
    const inOrder = this.stored.filter((s) => s.seq <= upTo).sort((a, b) => a.seq - b.seq);
    for (const { fill } of inOrder) {
      if (seen.has(fill.fill_id)) continue;
      seen.add(fill.fill_id);
      const k = `${fill.fund_id}|${fill.symbol}`;
      const q = Number(fill.quantity) * (fill.side === "BUY" ? 1 : -1);
      positions.set(k, (positions.get(k) ?? 0) + q);
    }
    return { positions, unique: seen.size };
  }
}

/**
 * Rows of one entity kind in a running engine's snapshot, read beside the writer (WAL); 0 while the
 * file or its table does not exist yet.
 */
export function snapshotRows(path: string, kind: string): number {
  if (!existsSync(path)) return 0;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    // idempotency records have their own table (state/idem-store.ts); other kinds are entities
    const row = (
      kind === "idem"
        ? db.prepare("SELECT count(*) AS n FROM idem").get()
        : db.prepare("SELECT count(*) AS n FROM entities WHERE kind = ?").get(kind)
    ) as { n: number };
    return row.n;
  } catch {
    return 0;
  } finally {
    db.close();
  }
}

export interface SnapshotView {
  positions: Map<string, string>;
  fillIds: number;
  cursors: Record<string, number>;
  /** Idempotency records, as `fund|key`. */
  idem: Set<string>;
  /** Orders holding a reservation, as `fund|order_id`. */
  reserved: Set<string>;
}

/** Opens a snapshot file (engine stopped) and reads its positions, fill ids and cursors. */
export function readSnapshot(path: string): SnapshotView {
  const snap = openSnapshot(path);
  try {
    const state = snap.load();
    const positions = new Map<string, string>();
    for (const f of state.funds.values()) {
      for (const b of f.books.values()) positions.set(`${f.id}|${b.symbol}`, b.pos.qty.toFixed());
    }
    const idem = new Set([...state.idem.values()].map((r) => `${r.fund}|${r.key}`));
    const reserved = new Set(
      [...state.orders.open()].filter((o) => o.reserved.gt(0)).map((o) => `${o.fund}|${o.orderId}`),
    );
    return {
      positions,
      fillIds: state.fillIds.size,
      cursors: Object.fromEntries(state.cursors),
      idem,
      reserved,
    };
  } finally {
    snap.close();
  }
}

/** Every difference between expected and actual positions, one line each (zero = absent). */
export function positionDiff(expected: Map<string, number>, actual: Map<string, string>): string[] {
  const keys = new Set([...expected.keys(), ...actual.keys()]);
  const out: string[] = [];
  for (const k of [...keys].sort()) {
    const e = expected.get(k) ?? 0;
    const a = Number(actual.get(k) ?? "0");
    if (e !== a) out.push(`${k}: expected ${e}, got ${a}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checks, as the OMS sends them
// ---------------------------------------------------------------------------------------------

export type CheckOutcome = { kind: "decision"; d: RiskDecision } | { kind: "no_reply"; why: string };

export async function sendCheck(
  nc: NatsConnection,
  order: Record<string, unknown>,
  timeoutMs: number,
): Promise<CheckOutcome> {
  try {
    const m = await nc.request(Subjects.check, JSON.stringify(order), { timeout: timeoutMs });
    return { kind: "decision", d: m.json<RiskDecision>() };
  } catch (err) {
    const text = err instanceof Error ? `${err.name} ${err.message}` : String(err);
    return { kind: "no_reply", why: /no responders|503/i.test(text) ? "no_responders" : "timeout" };
  }
}

/**
 * The OMS: send until a decision other than STATE_NOT_READY comes back, retrying timeouts, "no
 * responders" (engine down) and STATE_NOT_READY with the same idempotency key.
 */
export async function checkWithRetry(
  nc: NatsConnection,
  order: Record<string, unknown>,
  o: { timeoutMs?: number; deadlineMs?: number; backoffMs?: number } = {},
): Promise<{ d: RiskDecision; attempts: number }> {
  const { timeoutMs = 2000, deadlineMs = 90_000, backoffMs = 100 } = o;
  const deadline = Date.now() + deadlineMs;
  for (let attempts = 1; ; attempts++) {
    const out = await sendCheck(nc, order, timeoutMs);
    if (out.kind === "decision" && out.d.rejection_code !== "STATE_NOT_READY") return { d: out.d, attempts };
    if (Date.now() > deadline) throw new Error(`no decision for ${String(order["order_id"])} in time`);
    await delay(backoffMs); // retry backoff, not a wait for a condition
  }
}

/** Every decision record on RISK_DECISIONS, in stream order (ordered consumer; no size limit). */
export async function readDecisions(js: JetStreamClient, jsm: JetStreamManager): Promise<DecisionRecord[]> {
  const info = await jsm.streams.info("RISK_DECISIONS");
  const out: DecisionRecord[] = [];
  if (info.state.messages === 0) return out;
  const c = await js.consumers.get("RISK_DECISIONS");
  const msgs = await c.consume();
  try {
    for await (const m of msgs) {
      // one record, or a group commit (`Mts-Batch`): an array of records (empty: a fence)
      const v = m.json<DecisionRecord | DecisionRecord[]>();
      out.push(...(Array.isArray(v) ? v : [v]));
      if (m.seq >= info.state.last_seq) break;
    }
  } finally {
    await msgs.close();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// One isolated world per test: a nats-server, a client, a state dir, an engine process
// ---------------------------------------------------------------------------------------------

export interface Harness {
  server: NatsServerHandle;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  dir: string;
  stateDir: string;
  engine: EngineProcess;
  rebuilds: number;
  /** Stops everything; removes the files unless `keep` (or CRASH_KEEP=1). */
  dispose(keep?: boolean): Promise<void>;
}

/**
 * A test's server and its engine child process. `serverConfig`: nats-server config text (its own
 * file in the harness directory; host, port and JetStream are still set by flags).
 */
export async function startHarness(
  name: string,
  env: Record<string, string> = {},
  opts: { serverConfig?: string } = {},
): Promise<Harness> {
  assertBuilt();
  const dir = mkdtempSync(join(tmpdir(), `mts-fault-${name}-`));
  let configFile: string | undefined;
  if (opts.serverConfig !== undefined) {
    configFile = join(dir, "nats-server.conf");
    writeFileSync(configFile, opts.serverConfig);
  }
  const server = await startTestNats(configFile !== undefined ? { configFile } : {});
  const nc = await connectTest(server.url);
  const stateDir = join(dir, "state");
  const engine = new EngineProcess({ natsUrl: server.url, stateDir, logFile: join(dir, "engine.log"), env });
  return {
    server,
    nc,
    js: jetstream(nc),
    jsm: await jetstreamManager(nc),
    dir,
    stateDir,
    engine,
    rebuilds: 0,
    async dispose(keep = false) {
      if (engine.running) await engine.kill9();
      await nc.close().catch(() => undefined);
      await server.stop();
      if (!keep && process.env["CRASH_KEEP"] !== "1") rmSync(dir, { recursive: true, force: true });
    },
  };
}
