/**
 * `mts-risk serve [--auto-nats]`: run the engine until SIGINT/SIGTERM. With --auto-nats (what
 * `npm start` passes), a local nats-server is started from ./nats-server.conf when NATS_URL is
 * unset and nothing listens at nats.url, and stopped on shutdown.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import {
  INSTALL_HINT,
  NatsServerNotFound,
  findNatsServer,
  isReachable,
  startNatsServer,
  type NatsServerHandle,
} from "../../bus/nats-server.js";
import { describeSources, type Config } from "../../config/index.js";
import { startEngine, type Engine } from "../../engine/index.js";
import { type HttpHandle, startHttp } from "../../http/server.js";
import { systemClock } from "../../time/clock.js";
import type { Logger } from "../../obs/log.js";
import { type CliContext, CliError, PROG, firstLine } from "../common.js";

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** The port of a loopback `nats.url` (a local server can stand in for it), else undefined. */
function loopbackPort(url: string): number | undefined {
  try {
    const first = (url.split(",")[0] ?? "").trim();
    const u = new URL(first.includes("://") ? first : `nats://${first}`);
    return LOOPBACK.has(u.hostname) ? Number(u.port || 4222) : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves with the first SIGINT/SIGTERM received from now on. */
function signals(): { received: Promise<NodeJS.Signals>; dispose(): void } {
  let handler: (sig: NodeJS.Signals) => void = () => undefined;
  const received = new Promise<NodeJS.Signals>((done) => {
    handler = (sig) => done(sig);
  });
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
  return {
    received,
    dispose: () => {
      process.removeListener("SIGINT", handler);
      process.removeListener("SIGTERM", handler);
    },
  };
}

async function startLocalNats(port: number, log: Logger): Promise<NatsServerHandle> {
  const cwd = process.cwd();
  const confFile = resolve(cwd, "nats-server.conf");
  const varDir = resolve(cwd, "var");
  mkdirSync(varDir, { recursive: true });
  const logFile = join(varDir, "nats-server.log");
  const conf = existsSync(confFile) ? confFile : undefined;
  log.info({ port, config: conf ?? null, log: logFile }, "no NATS reachable: starting a local nats-server");
  try {
    return await startNatsServer({
      port,
      cwd,
      logFile,
      ...(conf !== undefined ? { configFile: conf } : { storeDir: join(varDir, "nats") }),
    });
  } catch (err) {
    if (err instanceof NatsServerNotFound) throw err;
    throw new CliError(`cannot start nats-server: ${firstLine(err)} (see ${logFile})`, 2, { cause: err });
  }
}

async function serve(ctx: CliContext, cmd: Command, autoNats: boolean): Promise<number> {
  const loaded = ctx.load(cmd);
  const log = loaded.log;
  let config: Config = loaded.config;
  log.info({ sources: loaded.sources }, `config: ${describeSources(loaded.sources)}`);
  const stop = signals();
  let nats: NatsServerHandle | undefined;
  let engine: Engine | undefined;
  let http: HttpHandle | undefined;
  try {
    const port = loopbackPort(config.nats.url);
    const unset = ctx.env.NATS_URL === undefined || ctx.env.NATS_URL === "";
    if (autoNats && unset && port !== undefined && !(await isReachable(config.nats.url))) {
      const noBinary = (): number => {
        process.stderr.write(
          `${PROG}: nothing listens at ${config.nats.url} and no nats-server binary was found\n`,
        );
        process.stderr.write(`${INSTALL_HINT}\n`);
        return 2;
      };
      if (findNatsServer(ctx.env) === undefined) return noBinary();
      try {
        nats = await startLocalNats(port, log);
      } catch (err) {
        if (err instanceof NatsServerNotFound) return noBinary();
        throw err;
      }
      config = { ...config, nats: { ...config.nats, url: nats.url } };
    }
    const startedAt = systemClock.now();
    engine = await startEngine({ config, log, waitReady: false });
    http = await startHttp({ engine, config: config.http, clock: systemClock, log, startedAt });
    log.info(
      { instance: engine.instance, nats: config.nats.url, http: http?.url ?? null },
      "engine started; SIGINT or SIGTERM stops it",
    );
    const sig = await stop.received;
    log.info({ signal: sig }, "shutting down");
    return 0;
  } finally {
    stop.dispose();
    await http?.close();
    try {
      await engine?.close();
    } finally {
      await nats?.stop();
    }
    if (engine || nats) log.info("stopped");
  }
}

export function registerServe(program: Command, ctx: CliContext): void {
  program
    .command("serve")
    .description("run the risk engine until SIGINT or SIGTERM")
    .option(
      "--auto-nats",
      "start a local nats-server (./nats-server.conf) if NATS_URL is unset and none is reachable",
    )
    .action(async (opts: { autoNats?: boolean }, cmd: Command) => {
      ctx.exitCode = await serve(ctx, cmd, opts.autoNats === true);
    });
}
