/**
 * Run a local `nats-server` process (JetStream on, bound to 127.0.0.1): used by the integration
 * tests (a free port and a fresh store per test file) and by `npm start` when no NATS is reachable.
 *
 * Readiness is polled, never slept for: the port must accept TCP and a client must get JetStream
 * account info back, within 15 s.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, createWriteStream, readFileSync, statSync, type WriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";

export const INSTALL_HINT =
  "Install nats-server (2.9 or later):\n" +
  "  Debian/Ubuntu: sudo apt-get install nats-server   (installs /usr/sbin/nats-server)\n" +
  "  macOS:         brew install nats-server\n" +
  "  other:         download a release from https://github.com/nats-io/nats-server/releases\n" +
  "then put it on PATH or set NATS_SERVER_BIN=/path/to/nats-server.";

/** Searched after the PATH entries: Debian installs to /usr/sbin, often not on a user's PATH. */
const FALLBACK_DIRS = ["/usr/sbin", "/usr/local/bin"];
const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
const LOG_TAIL_CHARS = 16_384;
const LOG_TAIL_LINES = 20;

export class NatsServerNotFound extends Error {
  readonly code = "NATS_SERVER_NOT_FOUND";
  constructor(detail = "no nats-server binary found (NATS_SERVER_BIN, PATH, /usr/sbin, /usr/local/bin)") {
    super(`${detail}\n${INSTALL_HINT}`);
    this.name = "NatsServerNotFound";
  }
}

/** nats-server did not become ready: it exited, the port was taken, or the deadline passed. */
export class NatsServerStartError extends Error {
  readonly code = "NATS_SERVER_START_FAILED";
  /** The last lines the server wrote to stdout/stderr. */
  readonly logTail: string;
  constructor(message: string, logTail: string, options?: { cause?: unknown }) {
    super(logTail ? `${message}\n--- last nats-server output ---\n${logTail}` : message, options);
    this.name = "NatsServerStartError";
    this.logTail = logTail;
  }
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The nats-server binary: `NATS_SERVER_BIN` if set and executable, else `nats-server` in a PATH
 * directory, /usr/sbin or /usr/local/bin. An explicitly empty PATH ("") searches nothing, so a
 * caller can rule out every binary but NATS_SERVER_BIN.
 */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const explicit = env.NATS_SERVER_BIN;
  if (explicit && isExecutableFile(explicit)) return resolve(explicit);
  if (env.PATH === "") return undefined;
  const dirs = [...(env.PATH ?? "").split(delimiter).filter((d) => d !== ""), ...FALLBACK_DIRS];
  for (const dir of new Set(dirs)) {
    const candidate = join(dir, "nats-server");
    if (isExecutableFile(candidate)) return resolve(candidate);
  }
  return undefined;
}

/** host and port of `nats://host:port` (also `host:port`, first of a comma list; port 4222 if absent). */
function hostPort(url: string): { host: string; port: number } {
  const first = (url.split(",")[0] ?? "").trim();
  const u = new URL(first.includes("://") ? first : `nats://${first}`);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  return { host: host || "127.0.0.1", port: u.port ? Number(u.port) : 4222 };
}

/**
 * Whether something accepts TCP connections at the URL's host:port. A SIGSTOPped server still
 * "accepts" (the kernel completes the handshake), so this is not a liveness check.
 */
export function isReachable(url: string, timeoutMs = 1000): Promise<boolean> {
  let target: { host: string; port: number };
  try {
    target = hostPort(url);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((done) => {
    const sock = tcpConnect(target);
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      done(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.once("connect", () => finish(true));
    sock.once("error", () => finish(false));
  });
}

/** A port that was free on 127.0.0.1 a moment ago. */
function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? done(port) : fail(new Error("could not pick a free port"))));
    });
  });
}

export interface StartNatsServerOptions {
  /** Client port on 127.0.0.1; 0 or absent: pick a free one. */
  port?: number;
  /**
   * JetStream store directory (`-sd`). Default: a fresh temporary directory, which the caller
   * removes. With `configFile` whose jetstream block sets `store_dir`, leave this unset: the
   * file's directory is used (2.9 rejects `-sd` on top of it as a duplicate `store_dir`).
   */
  storeDir?: string;
  /** A nats-server config file (`-c`); host, port and JetStream are still forced by flags. */
  configFile?: string;
  /** Extra nats-server arguments, appended last (e.g. `["-m", "-1"]`: monitoring on a random port). */
  args?: string[];
  /** Append the server's stdout and stderr to this file; by default only a tail is kept in memory. */
  logFile?: string;
  /** Working directory of the server: relative paths in the config file resolve against it. */
  cwd?: string;
  /** Environment used to locate the binary (see findNatsServer). Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

export interface NatsServerHandle {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The JetStream store directory (the server keeps its files under `<storeDir>/jetstream`). */
  readonly storeDir: string;
  /** Pid of the current process (changes on restart). */
  readonly pid: number;
  /** SIGTERM and wait for exit; SIGKILL after 5 s. No-op if not running. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit (a crash). */
  kill(): Promise<void>;
  /** SIGSTOP: the server freezes, clients see timeouts, not disconnects. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** stop() (if running), then start again on the same port and store dir, and wait until ready. */
  restart(): Promise<void>;
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
  hasExited: () => boolean;
  /** "code 1" / "signal SIGKILL" once exited. */
  exitStatus: () => string;
  tail: () => string;
  serverId: () => string | undefined;
  storeDirFromLog: () => string | undefined;
  paused: boolean;
}

/** Live children, SIGKILLed if this process exits without stopping them. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }
  live.add(child);
}

function spawnServer(
  bin: string,
  args: string[],
  cwd: string | undefined,
  logFile: string | undefined,
): Running {
  const child = spawn(bin, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  track(child);
  const log: WriteStream | undefined = logFile ? createWriteStream(logFile, { flags: "a" }) : undefined;
  let buf = "";
  let serverId: string | undefined;
  let storeDir: string | undefined;
  const onData = (chunk: Buffer): void => {
    log?.write(chunk);
    buf = (buf + chunk.toString("utf8")).slice(-LOG_TAIL_CHARS);
    serverId ??= /\bID:\s+(N[A-Z0-9]{55})\b/.exec(buf)?.[1];
    storeDir ??= /Store Directory:\s+"([^"]+)"/.exec(buf)?.[1];
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  let done = false;
  let status = "running";
  const exited = new Promise<void>((settle) => {
    const finish = (): void => {
      if (done) return;
      done = true;
      live.delete(child);
      if (log) log.end(() => settle());
      else settle();
    };
    child.once("close", (code, sig) => {
      status = sig !== null ? `signal ${sig}` : `code ${code ?? "?"}`;
      finish();
    });
    child.once("error", (err) => {
      buf += `\n${String(err)}`;
      status = "spawn failed";
      finish();
    });
  });
  return {
    child,
    exited,
    hasExited: () => done,
    exitStatus: () => status,
    tail: () => buf.trimEnd().split("\n").slice(-LOG_TAIL_LINES).join("\n"),
    serverId: () => serverId,
    storeDirFromLog: () => storeDir,
    paused: false,
  };
}

/**
 * kill() returns before the signal has stopped the target: on another core the server may still
 * answer a request sent right after. On Linux, wait (≤ 2 s) until /proc shows it stopped ("T").
 */
function waitStopped(pid: number): void {
  if (process.platform !== "linux") return;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 2000; i++) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (state === "T" || state === "t") return;
    } catch {
      return; // gone
    }
    Atomics.wait(sleeper, 0, 0, 1);
  }
}

/** Connect, get JetStream account info, and check it is our server answering (not a stranger). */
async function probeJetStream(url: string, expectId: string | undefined, timeoutMs: number): Promise<void> {
  const nc = await connect({ servers: url, reconnect: false, timeout: timeoutMs, name: "nats-server-probe" });
  try {
    if (expectId !== undefined && nc.info?.server_id !== expectId) {
      throw new Error(`port answered by server ${nc.info?.server_id ?? "?"}, not ours (${expectId})`);
    }
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    await jsm.getAccountInfo();
  } finally {
    await nc.close().catch(() => undefined);
  }
}

async function waitReady(run: Running, url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  for (;;) {
    if (run.hasExited()) {
      throw new NatsServerStartError(
        `nats-server exited (${run.exitStatus()}) before it was ready (${url})`,
        run.tail(),
      );
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    if (await isReachable(url, Math.min(500, left))) {
      try {
        await probeJetStream(url, run.serverId(), Math.max(100, Math.min(2000, left)));
        if (!run.hasExited()) return;
      } catch (err) {
        lastError = err;
      }
    }
    await Promise.race([delay(50), run.exited]);
  }
  run.child.kill("SIGKILL");
  await run.exited;
  throw new NatsServerStartError(
    `nats-server at ${url} was not JetStream-ready within ${READY_TIMEOUT_MS} ms`,
    run.tail(),
    { cause: lastError },
  );
}

async function stopProcess(run: Running | undefined): Promise<void> {
  if (!run || run.hasExited()) return;
  run.child.kill("SIGTERM");
  if (run.paused) run.child.kill("SIGCONT"); // a stopped process would sit on the SIGTERM
  run.paused = false;
  const grace = delay(STOP_GRACE_MS, "timeout" as const);
  if ((await Promise.race([run.exited.then(() => "exited" as const), grace])) === "timeout") {
    run.child.kill("SIGKILL");
    await run.exited;
  }
}

/** Does the config file (comments stripped) set the JetStream store directory itself? */
function configSetsStoreDir(file: string): boolean {
  const text = readFileSync(file, "utf8").replace(/(#|\/\/).*$/gm, "");
  return /\b(store_dir|storedir|store)\s*[:=]/i.test(text);
}

export async function startNatsServer(opts: StartNatsServerOptions = {}): Promise<NatsServerHandle> {
  const env = opts.env ?? process.env;
  const bin = findNatsServer(env);
  if (bin === undefined) {
    const bad = env.NATS_SERVER_BIN;
    throw new NatsServerNotFound(
      bad ? `NATS_SERVER_BIN=${bad} is not an executable file, and no nats-server was found` : undefined,
    );
  }
  const configFile = opts.configFile !== undefined ? resolve(opts.configFile) : undefined;
  const cwd = opts.cwd !== undefined ? resolve(opts.cwd) : undefined;
  let storeDir: string | undefined = opts.storeDir !== undefined ? resolve(opts.storeDir) : undefined;
  let madeStoreDir = false;
  if (storeDir === undefined && !(configFile !== undefined && configSetsStoreDir(configFile))) {
    storeDir = await mkdtemp(join(tmpdir(), "nats-js-"));
    madeStoreDir = true;
  }
  const argsFor = (port: number): string[] => [
    ...(configFile !== undefined ? ["-c", configFile] : []),
    ...["-a", "127.0.0.1", "-p", String(port), "-js"],
    ...(storeDir !== undefined ? ["-sd", storeDir] : []),
    ...(opts.args ?? []),
  ];

  const launch = async (port: number): Promise<Running> => {
    const url = `nats://127.0.0.1:${port}`;
    if (await isReachable(url, 250)) {
      throw new NatsServerStartError(`port ${port} on 127.0.0.1 is already in use`, "");
    }
    const run = spawnServer(bin, argsFor(port), cwd, opts.logFile);
    await waitReady(run, url);
    return run;
  };

  let port = opts.port ?? 0;
  let run: Running | undefined;
  try {
    if (port !== 0) {
      run = await launch(port);
    } else {
      // A picked port can be taken before nats-server binds it: pick again, a few times.
      for (let attempt = 1; run === undefined; attempt++) {
        port = await freePort();
        try {
          run = await launch(port);
        } catch (err) {
          const taken =
            err instanceof NatsServerStartError && /already in use|address in use/i.test(err.message);
          if (!taken || attempt >= 3) throw err;
        }
      }
    }
  } catch (err) {
    if (madeStoreDir && storeDir !== undefined) await rm(storeDir, { recursive: true, force: true });
    throw err;
  }
  if (storeDir === undefined) {
    const fromLog = run.storeDirFromLog() ?? "";
    storeDir = resolve(cwd ?? process.cwd(), fromLog.replace(/[/\\]jetstream[/\\]?$/, ""));
  }

  let current: Running = run;
  const url = `nats://127.0.0.1:${port}`;
  const signal = (sig: NodeJS.Signals): void => {
    if (!current.hasExited()) current.child.kill(sig);
  };
  return {
    url,
    port,
    storeDir,
    get pid(): number {
      return current.child.pid ?? -1;
    },
    stop: () => stopProcess(current),
    kill: async () => {
      signal("SIGKILL");
      current.paused = false;
      await current.exited;
    },
    pause: () => {
      signal("SIGSTOP");
      current.paused = !current.hasExited();
      if (current.paused && current.child.pid !== undefined) waitStopped(current.child.pid);
    },
    resume: () => {
      signal("SIGCONT");
      current.paused = false;
    },
    restart: async () => {
      await stopProcess(current);
      current = await launch(port);
    },
  };
}
