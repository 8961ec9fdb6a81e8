/**
 * `mts-risk status [fund]`: the engine's EngineStatus (readiness, halted funds, cursors, state
 * digest, partitions owned); with a fund, also its report (`fund`: NAV, exposures against limits,
 * P&L, halts, stops). Exit 1 when the engine does not know the fund (or it has no envelope).
 * `--all`: every engine on the bus answers (scatter-gather on the status subject), one entry each
 * with what it owns, its lag and its lease epochs.
 */
import type { Command } from "commander";
import type { NatsConnection } from "@nats-io/transport-node";
import { Subjects } from "../../contract/index.js";
import { type CliContext, CliError, isRecord, requestJson, withNats } from "../common.js";
import { printJson } from "../io.js";
import { idArg } from "./control.js";

/** Every engine's EngineStatus, gathered for `waitMs`, sorted by instance. */
/**
 * Every engine's status. Without the state digest unless `digest` (it is O(state) on each engine,
 * and this is what the rolling-restart scripts poll every second).
 */
export async function statusAll(
  nc: NatsConnection,
  waitMs: number,
  o: { digest?: boolean } = {},
): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const body = o.digest === true ? "{}" : '{"digest":false}';
  const replies = await nc.requestMany(Subjects.status, body, { strategy: "timer", maxWait: waitMs });
  for await (const m of replies) {
    try {
      const v: unknown = m.json();
      if (isRecord(v)) out.push(v);
    } catch {
      // not an engine's answer
    }
  }
  return out.sort((a, b) => (String(a["instance"]) < String(b["instance"]) ? -1 : 1));
}

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command("status")
    .description(`ask a running engine for its status (${Subjects.status}) and print it as JSON`)
    .argument("[fund]", "fund_id: add the fund's exposures, P&L, halts and stops", idArg)
    .option("--all", "every engine on the bus: what each owns, its lag and lease epochs")
    .action(async (fund: string | undefined, opts: { all?: boolean }, cmd: Command) => {
      const { config, globals } = ctx.load(cmd);
      if (opts.all) {
        const engines = await withNats(config, globals, "status", (nc) =>
          statusAll(nc, Math.min(globals.timeout, 2000)),
        );
        if (engines.length === 0) throw new CliError(`no engine answered on ${Subjects.status}`, 2);
        printJson({
          engines: engines.map((e) => ({
            instance: e["instance"],
            ready: e["ready"],
            owned: e["owned"],
            partitions: e["partitions"],
            epochs: e["epochs"],
            lag: e["lag"],
            cursors: e["cursors"],
            uptime_s: e["uptime_s"],
          })),
        });
        ctx.exitCode = 0;
        return;
      }
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
