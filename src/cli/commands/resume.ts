/**
 * `mts-risk resume <fund> --operator <name> --reason <text>`: lift the fund's halts by publishing a
 * Resume on mts.v1.risk.resume.<fund> (RISK_CONTROL). Refused (exit 1) when the fund is not halted,
 * decided from the stream itself (no engine needed): halted iff the last message on
 * mts.v1.risk.halt.<fund> has a higher stream sequence than the last on mts.v1.risk.resume.<fund>.
 */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { Command } from "commander";
import { ResumeSchema, StreamName, Subjects } from "../../contract/index.js";
import { type CliContext, CliError, firstLine, withNats } from "../common.js";
import { printJson } from "../io.js";
import { fundArg, publishJs, textArg, validated } from "./control.js";

interface ResumeOptions {
  operator: string;
  reason: string;
}

/** Stream sequence of the last message on `subject` in RISK_CONTROL (0: none). */
async function lastSeq(jsm: JetStreamManager, subject: string): Promise<number> {
  const stream = StreamName.RISK_CONTROL;
  try {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    return m?.seq ?? 0;
  } catch (err) {
    // Older clients throw instead of returning null when the subject has no message.
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.NoMessageFound) return 0;
    throw new CliError(`cannot read stream ${stream}: ${firstLine(err)}`, 2, { cause: err });
  }
}

export function registerResume(program: Command, ctx: CliContext): void {
  program
    .command("resume")
    .description("lift a fund's halts (refused when the fund is not halted)")
    .argument("<fund>", "fund_id", fundArg)
    .requiredOption("--operator <name>", "who lifts the halt", textArg)
    .requiredOption("--reason <text>", "why", textArg)
    .action(async (fund: string, opts: ResumeOptions, cmd: Command) => {
      const { config, globals } = ctx.load(cmd);
      const resume = { fund_id: fund, operator: opts.operator, reason: opts.reason, at: "" };
      validated(ResumeSchema, { ...resume, at: new Date().toISOString() }, "resume");
      const result = await withNats(config, globals, "resume", async (nc) => {
        const jsm = await jetstreamManager(nc, { timeout: globals.timeout });
        const halt = await lastSeq(jsm, Subjects.halt(fund));
        const resumed = await lastSeq(jsm, Subjects.resume(fund));
        if (halt === 0 || halt < resumed) {
          throw new CliError(
            halt === 0
              ? `fund ${fund} is not halted (no halt on ${Subjects.halt(fund)})`
              : `fund ${fund} is not halted (its last halt, seq ${halt}, was resumed at seq ${resumed})`,
            1,
          );
        }
        resume.at = new Date().toISOString();
        const ack = await publishJs(nc, Subjects.resume(fund), resume, globals);
        return { fund_id: fund, stream_seq: ack.seq };
      });
      printJson(result);
      ctx.exitCode = 0;
    });
}
