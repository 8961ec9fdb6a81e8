/** `mts-risk envelope get|set|history <fund>`: a fund's risk envelope (`set` is in envelope-set.ts). */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Command } from "commander";
import { EnvelopeSchema, StreamName, Subjects, toWire } from "../../contract/index.js";
import {
  type CliContext,
  CliError,
  firstLine,
  isRecord,
  replyError,
  requestJson,
  withNats,
} from "../common.js";
import { positiveInt, printJson, printLine } from "../io.js";
import { registerEnvelopeSet } from "./envelope-set.js";

export function registerEnvelope(program: Command, ctx: CliContext): void {
  const envelope = program.command("envelope").description("read, publish and list a fund's risk envelope");

  envelope
    .command("get")
    .description(
      `print the fund's current envelope (or --version N) from the engine (${Subjects.envelopeGet})`,
    )
    .argument("<fund>", "fund_id")
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
    .argument("<fund>", "fund_id")
    .action(async (fund: string, _opts: unknown, cmd: Command) => {
      const { config, globals } = ctx.load(cmd);
      const subject = Subjects.envelopeUpdated(fund);
      const stream = StreamName.RISK_ENVELOPES;
      const rows = await withNats(config, globals, "envelope-history", async (nc) => {
        const jsm = await jetstreamManager(nc, { timeout: globals.timeout });
        let count: number;
        try {
          const info = await jsm.streams.info(stream, { subjects_filter: subject });
          count = info.state.subjects?.[subject] ?? 0;
        } catch (err) {
          throw new CliError(`cannot read stream ${stream}: ${firstLine(err)}`, 2, { cause: err });
        }
        const out: Record<string, unknown>[] = [];
        if (count === 0) return out;
        const consumer = await jetstream(nc, { timeout: globals.timeout }).consumers.get(stream, {
          filter_subjects: subject,
        });
        const messages = await consumer.consume({ max_messages: 100 });
        // No message for a whole timeout while some are still pending: give up.
        let stalled = false;
        const arm = () =>
          setTimeout(() => {
            stalled = true;
            void messages.close();
          }, globals.timeout);
        let idle = arm();
        try {
          for await (const m of messages) {
            clearTimeout(idle);
            out.push(historyRow(m.seq, m.time, m.string()));
            if (m.info.pending === 0) break;
            idle = arm();
          }
        } finally {
          clearTimeout(idle);
          await messages.close();
        }
        if (stalled) throw new CliError(`reading ${stream}: no message within ${globals.timeout} ms`);
        return out;
      });
      if (rows.length === 0) throw new CliError(`no envelope published for fund ${fund}`, 1);
      for (const r of rows) printLine(r);
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
