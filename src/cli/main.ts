/**
 * `mts-risk`: the operator CLI (ENGINE.md "Operator CLI"). `main` returns the exit code:
 * 0 success, 1 a negative answer (order rejected, envelope not found, refused), 2 an error
 * (usage, configuration, NATS unreachable, no responders, timeout). Errors are one line on stderr.
 */
import { Command, CommanderError } from "commander";
import { registerBench } from "./commands/bench.js";
import { registerCheck } from "./commands/check.js";
import { registerEnvelope } from "./commands/envelope.js";
import { registerExplain } from "./commands/explain.js";
import { registerHalt } from "./commands/halt.js";
import { registerRebuild } from "./commands/rebuild.js";
import { registerResume } from "./commands/resume.js";
import { registerServe } from "./commands/serve.js";
import { registerStatus } from "./commands/status.js";
import { registerTail } from "./commands/tail.js";
import { CliContext, CliError, PROG, firstLine } from "./common.js";
import { timeoutMs } from "./io.js";

function buildProgram(ctx: CliContext, helpOnError: { text: string }): Command {
  const program = new Command(PROG)
    .description("Pre-trade risk engine on NATS JetStream: run it, query it, manage envelopes, halt funds.")
    .exitOverride()
    .configureOutput({
      // Help shown because of a usage error (a missing subcommand) is replaced by one line.
      writeErr: (s) => {
        helpOnError.text += s;
      },
      outputError: () => undefined, // reported by main, as one line
    })
    .configureHelp({ showGlobalOptions: true })
    .showSuggestionAfterError(true)
    .option("--config <file>", "YAML configuration file")
    .option("--nats-url <url>", "NATS server URL (config nats.url)")
    .option("--state-dir <dir>", "directory of the engine snapshot (config state.dir)")
    .option("--timeout <ms>", "request timeout in milliseconds", timeoutMs, 5000);
  registerServe(program, ctx);
  registerStatus(program, ctx);
  registerCheck(program, ctx);
  registerEnvelope(program, ctx);
  registerRebuild(program, ctx);
  registerHalt(program, ctx);
  registerResume(program, ctx);
  registerTail(program, ctx);
  registerExplain(program, ctx);
  registerBench(program);
  return program;
}

function commanderMessage(err: CommanderError, helpText: string): string {
  if (err.code === "commander.help") {
    const usage = /Usage:\s+(.*?)\s+\[options\]/.exec(helpText)?.[1] ?? PROG;
    const sub = usage.slice(PROG.length).trim();
    return `${sub ? `${sub}: ` : ""}missing command; see \`${usage} --help\``;
  }
  return err.message
    .replace(/^error:\s*/, "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .join(" ");
}

export async function main(argv: string[]): Promise<number> {
  const ctx = new CliContext(process.env);
  const helpOnError = { text: "" };
  const program = buildProgram(ctx, helpOnError);
  try {
    await program.parseAsync(argv, { from: "user" });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, help, --version
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return 0;
      if (err.code === "commander.help" && err.exitCode === 0 && helpOnError.text === "") return 0;
      process.stderr.write(`${PROG}: ${commanderMessage(err, helpOnError.text)}\n`);
      return 2;
    }
    ctx.log?.debug({ err }, "command failed");
    process.stderr.write(`${PROG}: ${firstLine(err)}\n`);
    return err instanceof CliError ? err.exitCode : 2;
  }
}
