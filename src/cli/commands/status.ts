/**
 * `mts-risk status [fund]`: the engine's EngineStatus (readiness, halted funds, cursors, state
 * digest); with a fund, also its report (`fund`: NAV, exposures against limits, P&L, halts, stops).
 * Exit 1 when the engine does not know the fund (or it has no envelope).
 */
import type { Command } from "commander";
import { Subjects } from "../../contract/index.js";
import { type CliContext, CliError, isRecord, requestJson, withNats } from "../common.js";
import { printJson } from "../io.js";
import { idArg } from "./control.js";

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command("status")
    .description(`ask a running engine for its status (${Subjects.status}) and print it as JSON`)
    .argument("[fund]", "fund_id: add the fund's exposures, P&L, halts and stops", idArg)
    .action(async (fund: string | undefined, _opts: unknown, cmd: Command) => {
      const { config, globals } = ctx.load(cmd);
      const body = fund === undefined ? {} : { fund_id: fund };
      const reply = await withNats(config, globals, "status", (nc) =>
        requestJson(nc, Subjects.status, body, globals.timeout),
      );
      if (fund !== undefined) {
        if (!isRecord(reply) || !("fund" in reply)) {
          throw new CliError(`the engine's status reply has no "fund" (an engine without fund reports?)`);
        }
        if (reply.fund === null) {
          throw new CliError(`fund ${fund} is not known to the engine (no envelope)`, 1);
        }
      }
      printJson(reply);
      ctx.exitCode = 0;
    });
}
