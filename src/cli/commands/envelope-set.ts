/**
 * `mts-risk envelope set <fund> --file <envelope.json|yaml>`: validate and publish a new envelope
 * version to RISK_ENVELOPES (`Nats-Msg-Id` env:<fund>:<version>, so a retry is not stored twice).
 *
 * Concurrent updates: the command reads the last envelope stored on
 * `mts.v1.risk.envelope.updated.<fund>` and publishes with `Nats-Expected-Last-Subject-Sequence` =
 * its stream sequence (0 when there is none). If another update landed in between, the stream
 * refuses the publish (or, for the same version, stores nothing: a duplicate with other content)
 * and the command fails with exit 2, naming the version that won; nothing is silently dropped.
 */
import { JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Command } from "commander";
import { EnvelopeSchema, StreamName, Subjects, canonicalJson, firstIssue } from "../../contract/index.js";
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

/** The last envelope stored for the fund: its stream sequence (0: none) and version (if any). */
async function lastStored(
  nc: NatsConnection,
  fund: string,
  g: GlobalOptions,
): Promise<{ seq: number; version: number | undefined }> {
  const subject = Subjects.envelopeUpdated(fund);
  let m;
  try {
    const jsm = await jetstreamManager(nc, { timeout: g.timeout });
    m = await jsm.streams.getMessage(StreamName.RISK_ENVELOPES, { last_by_subj: subject });
  } catch (err) {
    throw requestFailure(`${StreamName.RISK_ENVELOPES} ${subject}`, g.timeout, err);
  }
  if (!m) return { seq: 0, version: undefined };
  let version: unknown;
  try {
    version = m.json<Record<string, unknown> | null>()?.version;
  } catch {
    version = undefined;
  }
  return { seq: m.seq, version: typeof version === "number" ? version : undefined };
}

/** The loser of a race: one line naming the version that won. */
async function lostRace(nc: NatsConnection, fund: string, mine: number, g: GlobalOptions): Promise<CliError> {
  const won = await lastStored(nc, fund, g).catch(() => undefined);
  const what =
    won && won.seq > 0 ? `version ${won.version ?? "?"} (stream seq ${won.seq}) won` : "another update won";
  return new CliError(
    `${fund}: another envelope update was published concurrently; ${what}; ` +
      `${fund}@v${mine} was not published (read the envelope again and retry)`,
    2,
  );
}

/** Every envelope message stored for the fund, in stream order (RISK_ENVELOPES keeps the last 100). */
export async function storedEnvelopes(
  nc: NatsConnection,
  fund: string,
  g: GlobalOptions,
): Promise<{ seq: number; time: Date; text: string }[]> {
  const subject = Subjects.envelopeUpdated(fund);
  const stream = StreamName.RISK_ENVELOPES;
  const jsm = await jetstreamManager(nc, { timeout: g.timeout });
  let count: number;
  try {
    const info = await jsm.streams.info(stream, { subjects_filter: subject });
    count = info.state.subjects?.[subject] ?? 0;
  } catch (err) {
    throw new CliError(`cannot read stream ${stream}: ${firstLine(err)}`, 2, { cause: err });
  }
  const out: { seq: number; time: Date; text: string }[] = [];
  if (count === 0) return out;
  const consumer = await jetstream(nc, { timeout: g.timeout }).consumers.get(stream, {
    filter_subjects: subject,
  });
  const messages = await consumer.consume({ max_messages: 100 });
  // No message for a whole timeout while some are still pending: give up.
  let stalled = false;
  const arm = () =>
    setTimeout(() => {
      stalled = true;
      void messages.close();
    }, g.timeout);
  let idle = arm();
  try {
    for await (const m of messages) {
      clearTimeout(idle);
      out.push({ seq: m.seq, time: m.time, text: m.string() });
      if (m.info.pending === 0) break;
      idle = arm();
    }
  } finally {
    clearTimeout(idle);
    await messages.close();
  }
  if (stalled) throw new CliError(`reading ${stream}: no message within ${g.timeout} ms`);
  return out;
}

/** A stored envelope of this version and content (a retry of a publish that landed), if any. */
async function storedSame(
  nc: NatsConnection,
  fund: string,
  doc: Record<string, unknown>,
  g: GlobalOptions,
): Promise<number | undefined> {
  const want = canonicalJson(doc);
  for (const m of await storedEnvelopes(nc, fund, g)) {
    try {
      if (canonicalJson(JSON.parse(m.text)) === want) return m.seq;
    } catch {
      // not JSON: not this envelope
    }
  }
  return undefined;
}

/** Test seam: runs between reading the last stored envelope and publishing. */
export interface EnvelopeSetHooks {
  afterRead?: () => Promise<void>;
}

export async function publishEnvelope(
  nc: NatsConnection,
  fund: string,
  doc: Record<string, unknown>,
  g: GlobalOptions,
  hooks: EnvelopeSetHooks = {},
): Promise<{ envelope_id: string; stream_seq: number }> {
  const last = await lastStored(nc, fund, g);
  if (doc.version === undefined || doc.version === null) {
    // current + 1, of the engine's version or the stream's, whichever is ahead
    doc.version = Math.max(await nextVersion(nc, fund, g), (last.version ?? 0) + 1);
    validate(doc);
  }
  await hooks.afterRead?.();
  const version = doc.version as number;
  const subject = Subjects.envelopeUpdated(fund);
  const envelopeId = `${fund}@v${version}`;
  if (last.version !== undefined && version <= last.version) {
    // CONTRACT.md: an older or equal version is ignored (and alerted) by the engine, and not kept
    // in the history. The very envelope already stored is a retry: answered as stored, not published.
    const seq = await storedSame(nc, fund, doc, g);
    if (seq !== undefined) return { envelope_id: envelopeId, stream_seq: seq };
    throw new CliError(
      `${envelopeId} is not newer than v${last.version}, the fund's last envelope: the engine would ignore it; not published`,
      1,
    );
  }
  let ack;
  try {
    ack = await jetstream(nc, { timeout: g.timeout }).publish(subject, JSON.stringify(doc), {
      msgID: `env:${fund}:${version}`,
      expect: { lastSubjectSequence: last.seq },
      timeout: g.timeout,
    });
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
      throw await lostRace(nc, fund, version, g);
    }
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
      // Two updates chose the same version (a race on "current + 1", or a reused version number).
      throw await lostRace(nc, fund, version, g);
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
      const result = await withNats(config, globals, "envelope-set", (nc) =>
        publishEnvelope(nc, fund, doc, globals),
      );
      printJson(result);
      ctx.exitCode = 0;
    });
}
