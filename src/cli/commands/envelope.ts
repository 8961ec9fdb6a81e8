/** `mts-risk envelope get|set|history <fund>`: a fund's risk envelope (`set` is in envelope-set.ts). */
import type { Command } from "commander";
import { EnvelopeSchema, StreamName, Subjects, toWire } from "../../contract/index.js";
import { type CliContext, CliError, isRecord, replyError, requestJson, withNats } from "../common.js";
import { positiveInt, printJson, printLine } from "../io.js";
import { fundArg } from "./control.js";
import { registerEnvelopeSet, storedEnvelopes } from "./envelope-set.js";

export function registerEnvelope(program: Command, ctx: CliContext): void {
  const envelope = program.command("envelope").description("read, publish and list a fund's risk envelope");

  envelope
    .command("get")
    .description(
      `print the fund's current envelope (or --version N) from the engine (${Subjects.envelopeGet})`,
    )
    .argument("<fund>", "fund_id", fundArg)
    .option("--version <n>", "a version from the engine's history", positiveInt)
    .action(async (fund: string, opts: { version?: number }, cmd: Command) => {
      const { config, globals } = ctx.load(cmd);
      const req = opts.version === undefined ? { fund_id: fund } : { fund_id: fund, version: opts.version };
      const reply = await withNats(config, globals, "envelope-get", (nc) =>
        requestJson(nc, Subjects.envelopeGet, req, globals.timeout),
      );
      const error = replyError(reply);
      if (error) throw new CliError(`${error.code}: ${error.message}`, 1);
      printJson(reply);
      ctx.exitCode = 0;
    });

  registerEnvelopeSet(envelope, ctx);

  envelope
    .command("history")
    .description(
      `list the fund's published envelope versions (${StreamName.RISK_ENVELOPES}), one JSON line each`,
    )
    .argument("<fund>", "fund_id", fundArg)
    .action(async (fund: string, _opts: unknown, cmd: Command) => {
      const { config, globals } = ctx.load(cmd);
      const rows = await withNats(config, globals, "envelope-history", async (nc) =>
        (await storedEnvelopes(nc, fund, globals)).map((m) => historyRow(m.seq, m.time, m.text)),
      );
      if (rows.length === 0) throw new CliError(`no envelope published for fund ${fund}`, 1);
      // the versions the engine kept: an older or equal version is ignored and not kept (CONTRACT.md)
      let newest = -Infinity;
      for (const r of rows) {
        if (typeof r.version === "number") {
          if (r.version <= newest) continue;
          newest = r.version;
        }
        printLine(r);
      }
      ctx.exitCode = 0;
    });
}

/** `{ version, seq, time, capital }` of one stored envelope (null where the message has none). */
function historyRow(seq: number, time: Date, text: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    doc = undefined;
  }
  const parsed = EnvelopeSchema.safeParse(doc);
  const wire = parsed.success ? (toWire(parsed.data) as Record<string, unknown>) : isRecord(doc) ? doc : {};
  return {
    version: wire.version ?? null,
    seq,
    time: time.toISOString(),
    capital: wire.capital ?? null,
  };
}
