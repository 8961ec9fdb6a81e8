/**
 * Integration-test harness for NATS: a real nats-server on 127.0.0.1 with a free port and a fresh
 * temporary store (NATS_SERVER_BIN or PATH), a reconnecting client, and deadline-based polling.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { connect, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node";
import {
  startNatsServer,
  type NatsServerHandle,
  type StartNatsServerOptions,
} from "../../src/bus/nats-server.js";

export type TestNatsOptions = Pick<StartNatsServerOptions, "args" | "logFile" | "configFile" | "cwd">;

/**
 * Start a nats-server on a free port with a fresh temporary store directory. `stop()` also removes
 * the store (so use `kill()`/`pause()` + `restart()` to take the server down and back up); throws
 * NatsServerNotFound, with install instructions, when there is no binary.
 */
export async function startTestNats(opts: TestNatsOptions = {}): Promise<NatsServerHandle> {
  const storeDir = await mkdtemp(join(tmpdir(), "mts-nats-test-"));
  let server: NatsServerHandle;
  try {
    server = await startNatsServer({ ...opts, port: 0, storeDir });
  } catch (err) {
    await rm(storeDir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: server.url,
    port: server.port,
    storeDir: server.storeDir,
    get pid(): number {
      return server.pid;
    },
    stop: async () => {
      try {
        await server.stop();
      } finally {
        await rm(storeDir, { recursive: true, force: true });
      }
    },
    kill: () => server.kill(),
    pause: () => server.pause(),
    resume: () => server.resume(),
    restart: () => server.restart(),
  };
}

/** A client that reconnects forever, quickly (100 ms between attempts). */
export function connectTest(url: string, opts: Partial<NodeConnectionOptions> = {}): Promise<NatsConnection> {
  return connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100, ...opts });
}

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What was awaited, for the error on timeout. */
  message?: string;
}

export class WaitForTimeout extends Error {
  readonly code = "WAIT_FOR_TIMEOUT";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WaitForTimeout";
  }
}

/**
 * Poll `fn` until it returns a truthy value, and return that value. A throw counts as "not yet"
 * (the last one becomes the timeout error's cause). Throws WaitForTimeout with `message` at the
 * deadline.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitForOptions = {}): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 20, message = "condition not met" } = opts;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new WaitForTimeout(`${message} (not within ${timeoutMs} ms)`, { cause: lastError });
    }
    await delay(Math.min(intervalMs, left));
  }
}
