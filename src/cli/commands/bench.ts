/**
 * `mts-risk bench [--quick] [--only <phases>] [--out <dir>] …`: the benchmark (ENGINE.md "Operator
 * CLI"), the same program as `npm run bench` (src/bench/main.ts) run as a child process with this
 * one's output: it starts its own nats-server, engine, baselines, quote publisher and load
 * generator, and writes `<out>/<date>[-quick].{json,md,svg}`. Exit 0 when it ran (missed targets
 * are figures, not errors), 2 when it could not.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { CliError } from "../common.js";
import { positiveInt } from "../io.js";

const PHASES = "apparatus,bus,several,quotefold,pipeline,scale,rss,soak,rebuild";

interface BenchOptions {
  quick?: boolean;
  only?: string;
  out?: string;
  engineProfile?: boolean;
  keep?: boolean;
  newChecks?: boolean;
  restartAfter?: number;
  rebuildFills?: number;
}

/** The benchmark's own arguments, from this command's options. */
export function benchArgs(o: BenchOptions): string[] {
  const args: string[] = [];
  if (o.quick) args.push("--quick");
  if (o.only !== undefined) args.push("--only", o.only);
  if (o.out !== undefined) args.push("--out", o.out);
  if (o.engineProfile) args.push("--engine-profile");
  if (o.keep) args.push("--keep");
  if (o.newChecks) args.push("--new-checks");
  if (o.restartAfter !== undefined) args.push("--restart-after", String(o.restartAfter));
  if (o.rebuildFills !== undefined) args.push("--rebuild-fills", String(o.rebuildFills));
  return args;
}

function phasesArg(v: string): string {
  const known = new Set(PHASES.split(","));
  const list = v.split(",").map((s) => s.trim());
  const bad = list.find((p) => !known.has(p));
  if (bad !== undefined) throw new CliError(`unknown phase '${bad}'; one of ${PHASES}`, 2);
  return list.join(",");
}

export function registerBench(program: Command): void {
  program
    .command("bench")
    .description(
      "run the benchmark (as `npm run bench`): ratios against baselines measured in the same run, written to bench/results/<date>.{json,md,svg}",
    )
    .option("--quick", "a fast look (≈ 3–4 min) instead of the full run (≈ 15 min)")
    .option("--only <phases>", `comma-separated phases: ${PHASES}`, phasesArg)
    .option("--out <dir>", "where the results are written (default: bench/results of the package)")
    .option("--engine-profile", "also V8 CPU profiles of the engine and of the rebuild")
    .option("--keep", "keep the work directory (stores, logs)")
    .option("--new-checks", "the in-process runs with the field checks switched on")
    .option("--restart-after <decisions>", "decisions made before the restart measurement", positiveInt)
    .option("--rebuild-fills <n>", "fills in the rebuild measurement", positiveInt)
    .action(async (opts: BenchOptions) => {
      const script = fileURLToPath(new URL("../../bench/main.js", import.meta.url));
      if (!existsSync(script))
        throw new CliError(`the benchmark is not built (${script}); run npm run build`, 2);
      const child = spawn(process.execPath, [script, ...benchArgs(opts)], { stdio: "inherit" });
      const code = await new Promise<number>((resolve, reject) => {
        child.on("error", reject);
        child.on("exit", (c, signal) => resolve(c ?? (signal ? 128 : 1)));
      });
      if (code !== 0) throw new CliError(`the benchmark exited with code ${code}`, 2);
    });
}
