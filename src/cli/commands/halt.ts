/**
 * `mts-risk halt <fund> --reason <text> [--kill] [--severity MANUAL|RECONCILIATION]`: publish a Halt
 * on mts.v1.risk.halt.<fund> (RISK_CONTROL). With --kill (severity KILL_SWITCH) it also asks the OMS
 * to cancel every open order of the fund on mts.v1.oms.cancel_all.<fund> (OMS_INTENTS), with
 * `Nats-Msg-Id` cancel_all:<fund>:<this halt's stream seq>: the engine's kill-switch worker publishes
 * the same id for the same press, so the stream keeps one per press (a second press is a new one).
 */
import { Option, type Command } from "commander";
import { HaltSchema, Subjects } from "../../contract/index.js";
import { type CliContext, withNats } from "../common.js";
import { printJson } from "../io.js";
import { cancelAllMsgId } from "../../workers/kill-switch.js";
import { fundArg, operatorId, publishJs, textArg, validated } from "./control.js";

interface HaltOptions {
  reason: string;
  kill?: boolean;
  severity: "MANUAL" | "RECONCILIATION";
}

/** The Nats-Msg-Id of the kill switch's cancel_all for the press stored at `haltSeq` (one per press). */
export { cancelAllMsgId };

export function registerHalt(program: Command, ctx: CliContext): void {
  program
    .command("halt")
    .description(
      "halt a fund: risk-increasing orders are rejected (FUND_HALTED) until `resume`; " +
        "--kill also cancels its open orders",
    )
    .argument("<fund>", "fund_id", fundArg)
    .requiredOption("--reason <text>", "why the fund is halted", textArg)
    .option("--kill", "kill switch: severity KILL_SWITCH, and ask the OMS to cancel all open orders")
    .addOption(
      new Option("--severity <severity>", "halt severity (without --kill)")
        .choices(["MANUAL", "RECONCILIATION"])
        .default("MANUAL")
        .conflicts("kill"),
    )
    .action(async (fund: string, opts: HaltOptions, cmd: Command) => {
      const { config, globals } = ctx.load(cmd);
      const kill = opts.kill === true;
      const at = new Date().toISOString();
      const halt = {
        fund_id: fund,
        severity: kill ? "KILL_SWITCH" : opts.severity,
        reason: opts.reason,
        at,
        by: operatorId(ctx.env),
      };
      validated(HaltSchema, halt, "halt");
      const result = await withNats(config, globals, "halt", async (nc) => {
        const ack = await publishJs(nc, Subjects.halt(fund), halt, globals);
        const out: Record<string, unknown> = { fund_id: fund, severity: halt.severity, stream_seq: ack.seq };
        if (kill) {
          const msgId = cancelAllMsgId(fund, ack.seq);
          const body = { fund_id: fund, reason: opts.reason, at };
          const c = await publishJs(nc, Subjects.cancelAll(fund), body, globals, msgId);
          out.cancel_all = {
            subject: Subjects.cancelAll(fund),
            msg_id: msgId,
            stream_seq: c.seq,
            duplicate: c.duplicate,
          };
        }
        return out;
      });
      printJson(result);
      ctx.exitCode = 0;
    });
}
