/**
 * What every `mts-risk` command shares: the global options, config loading, the NATS connection,
 * request-reply with one-line errors. Files and output: io.ts.
 */
import type { Command } from "commander";
import {
  NoRespondersError,
  RequestError,
  TimeoutError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from "@nats-io/transport-node";
import { connectBus } from "../bus/connect.js";
import { loadConfig, type Config, type LoadedConfig } from "../config/index.js";
import { createLogger, type Logger } from "../obs/log.js";

export const PROG = "mts-risk";

/** A failure the CLI reports as one line on stderr, with this exit code. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 2,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The options every command accepts (declared on the program). */
export interface GlobalOptions {
  config?: string;
  natsUrl?: string;
  stateDir?: string;
  timeout: number;
}

/** One run of `main`: the exit code the action decided, and the logger once config is loaded. */
export class CliContext {
  exitCode = 0;
  log: Logger | undefined;
  constructor(readonly env: NodeJS.ProcessEnv) {}

  globals(cmd: Command): GlobalOptions {
    return cmd.optsWithGlobals<GlobalOptions>();
  }

  /** Loads the configuration (file, env, flags) and creates the stderr logger at its level. */
  load(cmd: Command): LoadedConfig & { globals: GlobalOptions; log: Logger } {
    const globals = this.globals(cmd);
    const loaded = loadConfig({
      file: globals.config,
      env: this.env,
      flags: { "nats.url": globals.natsUrl, "state.dir": globals.stateDir },
    });
    const log = createLogger({ level: loaded.config.log.level });
    this.log = log;
    return { ...loaded, globals, log };
  }
}

/** The first line of an error's message (never a stack). */
export function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split("\n").find((l) => l.trim() !== "") ?? text).trim() || "unknown error";
}

export function connect(config: Config, g: GlobalOptions, what: string): Promise<NatsConnection> {
  return connectBus({
    url: config.nats.url,
    name: `${PROG}:${what}`,
    user: config.nats.user,
    pass: config.nats.pass,
    inboxPrefix: config.nats.inbox_prefix,
    timeoutMs: g.timeout,
  });
}

/** Connect, run `fn`, close. */
export async function withNats<T>(
  config: Config,
  g: GlobalOptions,
  what: string,
  fn: (nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const nc = await connect(config, g, what);
  try {
    return await fn(nc);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

function isNoResponders(err: unknown): boolean {
  if (err instanceof NoRespondersError) return true;
  if (err instanceof RequestError) return err.isNoResponders() || err.cause instanceof NoRespondersError;
  return false;
}

/** A request-reply failure as one line: no responders, timeout, or the client's own message. */
export function requestFailure(subject: string, timeoutMs: number, err: unknown): CliError {
  if (isNoResponders(err)) {
    return new CliError(`no responders on ${subject}: is the risk engine running?`, 2, { cause: err });
  }
  if (err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError)) {
    return new CliError(`no reply on ${subject} within ${timeoutMs} ms`, 2, { cause: err });
  }
  return new CliError(`request on ${subject} failed: ${firstLine(err)}`, 2, { cause: err });
}

export async function request(
  nc: NatsConnection,
  subject: string,
  data: string | Uint8Array,
  timeoutMs: number,
  headers?: MsgHdrs,
): Promise<Msg> {
  try {
    return await nc.request(
      subject,
      data,
      headers ? { timeout: timeoutMs, headers } : { timeout: timeoutMs },
    );
  } catch (err) {
    throw requestFailure(subject, timeoutMs, err);
  }
}

/** Request with a JSON body; the reply parsed as JSON. */
export async function requestJson(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  timeoutMs: number,
): Promise<unknown> {
  const msg = await request(nc, subject, JSON.stringify(body), timeoutMs);
  return parseReply(subject, msg);
}

export function parseReply(subject: string, msg: Msg): unknown {
  try {
    return msg.json<unknown>();
  } catch (err) {
    throw new CliError(`reply on ${subject} is not JSON`, 2, { cause: err });
  }
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** `{ error: { code, message } }` replies (envelope.get). */
export function replyError(v: unknown): { code: string; message: string } | undefined {
  if (!isRecord(v) || !isRecord(v.error)) return undefined;
  const { code, message } = v.error;
  return {
    code: typeof code === "string" ? code : "ERROR",
    message: typeof message === "string" ? message : "",
  };
}
