/**
 * Shared by the operator commands (halt, resume, status, tail): argument parsers, validation of the
 * messages they publish, and JetStream publishing with one-line errors.
 */
import { jetstream, type PubAck } from "@nats-io/jetstream";
import { NoRespondersError, RequestError, TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import { InvalidArgumentError } from "commander";
import type { z } from "zod";
import { ID_RE, NO_FUND, firstIssue } from "../../contract/index.js";
import { CliError, type GlobalOptions, firstLine } from "../common.js";

/** Commander parser: an id usable as a subject token (fund_id, alert kind). */
export function idArg(value: string): string {
  if (!ID_RE.test(value)) throw new InvalidArgumentError("must match ^[A-Za-z0-9_-]{1,64}$");
  return value;
}

/**
 * Commander parser: a fund id, so not `_`, the journal's "no fund" token (CONTRACT.md "Encoding"):
 * a halt or resume of it would be a control message for no fund, kept on RISK_CONTROL for ever.
 */
export function fundArg(value: string): string {
  idArg(value);
  if (value === NO_FUND)
    throw new InvalidArgumentError(`"${NO_FUND}" is reserved (the journal's "no fund" token)`);
  return value;
}

/** Commander parser: non-empty text. */
export function textArg(value: string): string {
  if (value.trim() === "") throw new InvalidArgumentError("must not be empty");
  return value;
}

/** Validate a message against its contract schema before publishing it (exit 2 naming the field). */
export function validated(schema: z.ZodType, body: Record<string, unknown>, what: string): void {
  const parsed = schema.safeParse(body);
  if (parsed.success) return;
  const issue = firstIssue(parsed.error);
  throw new CliError(`invalid ${what}: ${issue.path || "(root)"}: ${issue.message}`, 2);
}

function isNoResponders(err: unknown): boolean {
  if (err instanceof NoRespondersError) return true;
  return err instanceof RequestError && (err.isNoResponders() || err.cause instanceof NoRespondersError);
}

/** Publish JSON with JetStream and wait for the stream's ack. */
export async function publishJs(
  nc: NatsConnection,
  subject: string,
  body: unknown,
  g: GlobalOptions,
  msgID?: string,
): Promise<PubAck> {
  try {
    return await jetstream(nc, { timeout: g.timeout }).publish(subject, JSON.stringify(body), {
      timeout: g.timeout,
      ...(msgID !== undefined ? { msgID } : {}),
    });
  } catch (err) {
    // JetStream reports "no responders" (no stream takes the subject) as "jetstream is not enabled".
    const noStream = isNoResponders(err) || (err instanceof Error && isNoResponders(err.cause));
    if (noStream) {
      throw new CliError(`no JetStream stream stores ${subject}: start the engine once to create it`, 2, {
        cause: err,
      });
    }
    if (err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError)) {
      throw new CliError(`no ack for ${subject} within ${g.timeout} ms`, 2, { cause: err });
    }
    throw new CliError(`publish on ${subject} failed: ${firstLine(err)}`, 2, { cause: err });
  }
}

/** The operator identity recorded in what the CLI publishes. */
export function operatorId(env: NodeJS.ProcessEnv): string {
  const user = env.USER?.trim();
  return `operator:${user ? user : "cli"}`;
}
