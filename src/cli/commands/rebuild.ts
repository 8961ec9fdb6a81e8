/**
 * `mts-risk rebuild [--out FILE] [--install]`: replay every stream into a fresh snapshot and print
 * its state digest; `--install` then puts it in place of the engine's snapshot (engine stopped).
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import type { Config } from "../../config/index.js";
import { Subjects } from "../../contract/index.js";
import { rebuild, snapshotPath } from "../../engine/index.js";
import { rememberBus } from "../../engine/bus-identity.js";
import { systemClock } from "../../time/clock.js";
import { type CliContext, CliError, type GlobalOptions, isRecord, requestJson, withNats } from "../common.js";
import { printJson } from "../io.js";

const ENGINE_PROBE_MS = 1000;

/** Refuses (exit 1) when an engine answers a status request within 1 s. */
async function refuseIfEngineRuns(config: Config, g: GlobalOptions): Promise<void> {
  const answer = await withNats(config, g, "rebuild-probe", (nc) =>
    requestJson(nc, Subjects.status, { digest: false }, ENGINE_PROBE_MS).catch(() => undefined),
  );
  if (answer === undefined) return;
  const instance = isRecord(answer) && typeof answer.instance === "string" ? ` (${answer.instance})` : "";
  throw new CliError(`an engine${instance} answers on ${Subjects.status}: stop it before --install`, 1);
}

/** Move the rebuilt SQLite file (and any WAL left beside it) over the snapshot. */
function install(out: string, snap: string): void {
  mkdirSync(dirname(snap), { recursive: true });
  for (const suffix of ["-wal", "-shm"]) rmSync(snap + suffix, { force: true });
  renameSync(out, snap);
  if (existsSync(`${out}-wal`)) renameSync(`${out}-wal`, `${snap}-wal`);
  rmSync(`${out}-shm`, { force: true });
}

/** An empty file, or one that starts with SQLite's header (a snapshot a rebuild may replace). */
function isSqliteOrEmpty(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    const fd = openSync(file, "r");
    try {
      const head = Buffer.alloc(16);
      const n = readSync(fd, head, 0, 16, 0);
      return n === 0 || head.toString("latin1", 0, n) === "SQLite format 3\u0000".slice(0, n);
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** A path with its directory's symlinks resolved (the file itself too when it exists). */
function real(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    try {
      return join(realpathSync(dirname(p)), basename(p));
    } catch {
      return resolve(p);
    }
  }
}

/**
 * A rebuild deletes `out`, `out-wal` and `out-shm` before it writes: none may be a file of the
 * engine's snapshot (its WAL holds committed state), by any path to it.
 */
function touchesSnapshot(out: string, snap: string): boolean {
  const files = (p: string) => [p, `${p}-wal`, `${p}-shm`].map(real);
  const ours = new Set(files(snap));
  return files(out).some((f) => ours.has(f));
}

export function registerRebuild(program: Command, ctx: CliContext): void {
  program
    .command("rebuild")
    .description("rebuild the engine state from the streams into a fresh snapshot and print its digest")
    .option("--out <file>", "where to write the snapshot (default <state.dir>/rebuild.sqlite)")
    .option("--install", "then replace the engine's snapshot with it (refused while an engine runs)")
    .action(async (opts: { out?: string; install?: boolean }, cmd: Command) => {
      const { config, globals, log } = ctx.load(cmd);
      const snap = resolve(snapshotPath(config));
      const out = resolve(opts.out ?? join(config.state.dir, "rebuild.sqlite"));
      if (touchesSnapshot(out, snap)) {
        throw new CliError(
          `--out must not be the engine's snapshot or its -wal/-shm file (${snap}); rebuild elsewhere, then --install`,
        );
      }
      if (existsSync(out) && !isSqliteOrEmpty(out)) {
        throw new CliError(`--out ${out} exists and is not a SQLite file: not overwritten`);
      }
      const installing = opts.install === true;
      if (installing) await refuseIfEngineRuns(config, globals);
      mkdirSync(dirname(out), { recursive: true });
      const result = await rebuild({ config, out, clock: systemClock, log });
      if (installing) {
        if (result.events === 0 && existsSync(snap)) {
          // a server without the engine's streams (the wrong --nats-url) rebuilds an empty state:
          // installed, it would replace the engine's snapshot with nothing
          throw new CliError(
            `the streams at ${config.nats.url} hold no message: nothing rebuilt, ${snap} left as it is (the rebuilt snapshot is ${out})`,
          );
        }
        await refuseIfEngineRuns(config, globals);
        install(out, snap);
        rememberBus(config.state.dir, result.streams); // the bus it is of: the next start judges it
        printJson({ ...result, snapshot: snap, installed: true });
      } else {
        printJson(result);
      }
      ctx.exitCode = 0;
    });
}
