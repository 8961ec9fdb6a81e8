/**
 * `mts-risk envelope set <fund> --file <envelope.json|yaml>`: validate and publish a new envelope
 * version to RISK_ENVELOPES (`Nats-Msg-Id` env:<fund>:<version>, so a retry is not stored twice).
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Command } from "commander";
import { EnvelopeSchema, Subjects, canonicalJson, firstIssue } from "../../contract/index.js";
import {
  type CliContext,
  CliError,
  type GlobalOptions,
  firstLine,
  isRecord,
  replyError,
  requestJson,
  requestFailure,
  withNats,
} from "../common.js";
import { printJson, readDataFile } from "../io.js";

function validate(doc: Record<string, unknown>): void {
  const parsed = EnvelopeSchema.safeParse(doc);
  if (parsed.success) return;
  const issue = firstIssue(parsed.error);
  throw new CliError(`invalid envelope: ${issue.path || "(root)"}: ${issue.message}`, 2);
}

/** The engine's current version + 1, or 1 when it has none for the fund. */
async function nextVersion(nc: NatsConnection, fund: string, g: GlobalOptions): Promise<number> {
  let reply: unknown;
  try {
    reply = await requestJson(nc, Subjects.envelopeGet, { fund_id: fund }, g.timeout);
  } catch (err) {
    throw new CliError(`cannot get the current version (${firstLine(err)}); set "version" in the file`, 2, {
      cause: err,
    });
  }
  const error = replyError(reply);
  if (error?.code === "NOT_FOUND") return 1;
  if (error) throw new CliError(`cannot get the current version: ${error.code}: ${error.message}`);
  const current = isRecord(reply) ? reply.version : undefined;
  if (typeof current !== "number" || !Number.isSafeInteger(current)) {
    throw new CliError(`cannot get the current version: the reply has no integer "version"`);
  }
  return current + 1;
}

async function publish(
  nc: NatsConnection,
  fund: string,
  doc: Record<string, unknown>,
  g: GlobalOptions,
): Promise<{ envelope_id: string; stream_seq: number }> {
  const version = doc.version as number;
  const subject = Subjects.envelopeUpdated(fund);
  const envelopeId = `${fund}@v${version}`;
  let ack;
  try {
    ack = await jetstream(nc, { timeout: g.timeout }).publish(subject, JSON.stringify(doc), {
      msgID: `env:${fund}:${version}`,
      timeout: g.timeout,
    });
  } catch (err) {
    throw requestFailure(subject, g.timeout, err);
  }
  if (ack.duplicate) {
    // The same version was published recently: fine if it is the same envelope, else nothing changed.
    const jsm = await jetstreamManager(nc, { timeout: g.timeout });
    const stored = await jsm.streams.getMessage(ack.stream, { seq: ack.seq }).catch(() => null);
    let same = false;
    try {
      same = stored !== null && canonicalJson(stored.json()) === canonicalJson(doc);
    } catch {
      same = false;
    }
    if (!same) {
      throw new CliError(
        `${envelopeId} was already published with different content (stream seq ${ack.seq}); use a new version`,
        1,
      );
    }
  }
  return { envelope_id: envelopeId, stream_seq: ack.seq };
}

export function registerEnvelopeSet(envelope: Command, ctx: CliContext): void {
  envelope
    .command("set")
    .description("validate an envelope file and publish it as the fund's next version")
    .argument("<fund>", "fund_id")
    .requiredOption(
      "--file <envelope>",
      "the envelope as JSON (.json) or YAML; version defaults to current+1",
    )
    .action(async (fund: string, opts: { file: string }, cmd: Command) => {
      const { config, globals } = ctx.load(cmd);
      const doc = readDataFile(opts.file);
      if (!isRecord(doc)) throw new CliError(`${opts.file}: expected an envelope object`);
      if (doc.fund_id === undefined || doc.fund_id === null) doc.fund_id = fund;
      else if (doc.fund_id !== fund) {
        throw new CliError(`${opts.file}: fund_id ${JSON.stringify(doc.fund_id)} is not ${fund}`);
      }
      const versionGiven = doc.version !== undefined && doc.version !== null;
      // Fail on the file's own mistakes before asking anything of the engine.
      validate(versionGiven ? doc : { ...doc, version: 1 });
      const result = await withNats(config, globals, "envelope-set", async (nc) => {
        if (!versionGiven) {
          doc.version = await nextVersion(nc, fund, globals);
          validate(doc);
        }
        return publish(nc, fund, doc, globals);
      });
      printJson(result);
      ctx.exitCode = 0;
    });
}
