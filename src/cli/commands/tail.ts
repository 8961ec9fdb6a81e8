/**
 * `mts-risk tail decisions|alerts`: follow the engine's decisions (mts.v1.risk.decision.<fund|*>)
 * or alerts (mts.v1.risk.alert.<kind|*>.<fund|*>) live, one JSON line per message, until SIGINT or
 * SIGTERM or --count messages. A plain NATS subscription: it sees what JetStream stores from now on,
 * not the history. Decisions print as the RiskDecision plus its fund_id.
 */
import type { Msg } from "@nats-io/transport-node";
import { InvalidArgumentError, type Command } from "commander";
import { RejectionCode, Subjects } from "../../contract/index.js";
import { type CliContext, CliError, isRecord, withNats } from "../common.js";
import { positiveInt, printLine } from "../io.js";
import { idArg } from "./control.js";

interface TailOptions {
  fund?: string;
  kind?: string;
  rejected?: boolean;
  code?: string;
  count?: number;
}

type Kind = "decisions" | "alerts";

/** Commander parser: a rejection code of the contract. */
function codeArg(value: string): string {
  const code = value.toUpperCase();
  if (!(code in RejectionCode)) throw new InvalidArgumentError("not a rejection code of the contract");
  return code;
}

function subjectOf(kind: Kind, o: TailOptions): string {
  if (kind === "decisions") {
    if (o.kind !== undefined) throw new CliError("--kind applies to `tail alerts` only");
    return Subjects.decision(o.fund ?? "*");
  }
  if (o.rejected === true || o.code !== undefined) {
    throw new CliError("--rejected and --code apply to `tail decisions` only");
  }
  return Subjects.alert(o.kind ?? "*", o.fund ?? "*");
}

/** The line to print for one message, or undefined when filtered out (or not a record). */
function lineOf(kind: Kind, msg: Msg, o: TailOptions): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    v = msg.json<unknown>();
  } catch {
    return undefined;
  }
  if (!isRecord(v)) return undefined;
  if (kind === "alerts") return v;
  const d = v.decision;
  if (!isRecord(d)) return undefined;
  if (o.rejected === true && d.approved !== false) return undefined;
  if (o.code !== undefined && d.rejection_code !== o.code) return undefined;
  return { fund_id: v.fund_id, ...d };
}

export function registerTail(program: Command, ctx: CliContext): void {
  program
    .command("tail")
    .description("print decisions or alerts as they happen, one JSON line each (until Ctrl-C or --count)")
    .argument("<stream>", "decisions or alerts")
    .option("--fund <id>", "only this fund", idArg)
    .option("--kind <kind>", "alerts: only this kind (drift, stale, breach, cro, …)", idArg)
    .option("--rejected", "decisions: only rejections")
    .option("--code <code>", "decisions: only this rejection code (FUND_HALTED, …)", codeArg)
    .option("--count <n>", "stop after n messages", positiveInt)
    .action(async (stream: string, opts: TailOptions, cmd: Command) => {
      if (stream !== "decisions" && stream !== "alerts") {
        throw new CliError(`unknown stream "${stream}": expected decisions or alerts`);
      }
      const subject = subjectOf(stream, opts);
      const { config, globals } = ctx.load(cmd);
      await withNats(config, globals, "tail", async (nc) => {
        const sub = nc.subscribe(subject);
        const stop = () => sub.unsubscribe();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        try {
          await nc.flush(); // the server has the interest: nothing published from now on is missed
          let seen = 0;
          for await (const m of sub) {
            const line = lineOf(stream, m, opts);
            if (line === undefined) continue;
            printLine(line);
            if (opts.count !== undefined && ++seen >= opts.count) break;
          }
        } finally {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          if (!sub.isClosed()) sub.unsubscribe();
        }
      });
      ctx.exitCode = 0;
    });
}
