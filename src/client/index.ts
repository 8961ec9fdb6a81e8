/**
 * `mts1b-riskengine/client`: the typed OMS client (CONTRACT.md "Client library").
 *
 *   const risk = createRiskClient(nc, { timeoutMs: 500, retries: 2 });
 *   const d = await risk.check(order);          // never throws for an unreachable engine
 *   if (!d.approved) ...                        // d.rejection_code === "ENGINE_UNAVAILABLE": fail closed
 *
 * check(): validates the order locally with the engine's own schema (an invalid order is answered
 * SCHEMA_INVALID, gate "schema", `details.checked_by = "client"`, and never sent); sends it in
 * JSON or protobuf; an attempt that gets no reply within `timeoutMs` is sent again with the same
 * body (so the same `idempotency_key`: the engine answers a retry of a decided order with that
 * decision, `details.replayed = "true"`, never with a second one), up to `retries` more times;
 * "no responders" (no engine subscribed, e.g. while one restarts) is retried after a short pause
 * until the deadline, timeoutMs × (retries + 1). When no engine answered in time, the result is a
 * rejection with `rejecting_gate: "client"`, `rejection_code: "ENGINE_UNAVAILABLE"`.
 * A STATE_NOT_READY answer is returned as is (the engine did not record it: the OMS may retry).
 * A reply that is not a RiskDecision for this order (`approved` not a boolean, an approval with a
 * rejection code or of another order_id, a rejection without a code) is no answer: it is asked
 * again like a failed attempt, and ends in ENGINE_UNAVAILABLE (`last: malformed reply: …`).
 *
 * Connection: on a server run with deploy/nats-secure.conf, connect as the `oms` user with the OMS
 * inbox prefix, `connect({ user: "oms", pass, inboxPrefix: "_INBOX_oms" })`: replies, JetStream
 * acks and watch deliveries arrive under that prefix, the only inbox the role may subscribe to
 * (the default `_INBOX` is refused there, and check() would then only ever time out).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { setTimeout as delay } from "node:timers/promises";
import {
  PROTOBUF_CONTENT_TYPE,
  decodeDecisionProto,
  encodeOrderProto,
  isProtobufContentType,
} from "../contract/codec.js";
import { notADecision } from "../contract/decision-reply.js";
import { Subjects } from "../contract/subjects.js";
import { checkSchema } from "../gates/schema.js";
import type {
  Alert,
  DecisionRecord,
  EngineStatus,
  OrderRequest,
  RiskDecision,
  RiskEnvelope,
  Watch,
} from "./types.js";
import { watchSubject } from "./watch.js";

export type * from "./types.js";

export type Encoding = "json" | "protobuf";

export interface RiskClientOptions {
  /** Per attempt, in milliseconds (default 1000; > 0 and finite, else INVALID_OPTIONS). */
  timeoutMs?: number;
  /** Attempts after the first one timed out (default 2; a whole number >= 0, else INVALID_OPTIONS). */
  retries?: number;
  /** Default encoding of check() (default "json"). */
  encoding?: Encoding;
  /** Send checks on mts.v1.risk.check.<fund_id> (the partitioned form) instead of mts.v1.risk.check. */
  partitioned?: boolean;
  /** Override the check subject (a proxy, a test). */
  subject?: string;
  /** The clock that stamps the client's own rejections (default: system time). */
  now?: () => number;
}

export interface RiskClient {
  check(order: OrderRequest, o?: { encoding?: Encoding }): Promise<RiskDecision>;
  /** The fund's envelope in force (or `version`), undefined when the engine has none. */
  getEnvelope(fundId: string, version?: number): Promise<RiskEnvelope | undefined>;
  /** EngineStatus; with a fund, also its report under `fund`. */
  status(fundId?: string): Promise<EngineStatus>;
  /** Decision records of a fund as the engine journals them (from now on, or `from: "start"`). */
  watchDecisions(fundId: string, o?: { from?: "now" | "start" }): Watch<DecisionRecord>;
  /** Alerts of a fund (every kind). */
  watchAlerts(fundId: string, o?: { from?: "now" | "start" }): Watch<Alert>;
}

/** A failure of getEnvelope/status (those throw: there is no fail-closed answer to give). */
/** A reply that is a JSON object, else a RiskClientError (MALFORMED_REPLY). */
function objectReply(v: unknown, subject: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new RiskClientError("MALFORMED_REPLY", `${subject}: the reply is not a JSON object`);
  return v as Record<string, unknown>;
}

/** The `{ error: { code, message } }` of an engine's answer, if it is one. */
function errorOf(reply: Record<string, unknown>): { code?: string; message?: string } | undefined {
  const e = reply["error"];
  if (e === undefined || e === null) return undefined;
  if (typeof e !== "object") return { message: typeof e === "string" ? e : JSON.stringify(e) };
  const o = e as Record<string, unknown>;
  return {
    ...(typeof o["code"] === "string" ? { code: o["code"] } : {}),
    ...(typeof o["message"] === "string" ? { message: o["message"] } : {}),
  };
}

export class RiskClientError extends Error {
  override readonly name = "RiskClientError";
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A reply on the check subject that is not a RiskDecision for this order: not an answer. */
export class MalformedReplyError extends Error {
  override readonly name = "MalformedReplyError";
  constructor(problem: string) {
    super(`malformed reply: ${problem}`);
  }
}

const te = new TextEncoder();

function errorKind(err: unknown): "timeout" | "no_responders" | "other" {
  const e = err as {
    name?: string;
    code?: string;
    message?: string;
    cause?: unknown;
    isNoResponders?: () => boolean;
  };
  if (typeof e?.isNoResponders === "function" && e.isNoResponders()) return "no_responders";
  const text = `${e?.name ?? ""} ${e?.code ?? ""} ${e?.message ?? ""}`;
  if (/no ?responders|503/i.test(text)) return "no_responders";
  if (/timeout/i.test(text)) return "timeout";
  if (e?.cause) return errorKind(e.cause);
  return "other";
}

/** Node's longest timer (a longer one fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function createRiskClient(nc: NatsConnection, opts: RiskClientOptions = {}): RiskClient {
  const timeoutMs = opts.timeoutMs ?? 1000;
  const retries = opts.retries ?? 2;
  // a timeout of 0 (or NaN) made every check ENGINE_UNAVAILABLE after 0 attempts, a phantom outage;
  // endless retries made a check never return while no engine answers: both are refused here
  // (and one past Node's longest timer, 2^31 − 1 ms, fires at once: the same phantom outage)
  if (!(timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
    throw new RiskClientError(
      "INVALID_OPTIONS",
      `timeoutMs must be a positive number of ms up to ${MAX_TIMER_MS}, not ${timeoutMs}`,
    );
  }
  if (!(Number.isSafeInteger(retries) && retries >= 0)) {
    throw new RiskClientError("INVALID_OPTIONS", `retries must be a whole number >= 0, not ${retries}`);
  }
  const now = opts.now ?? (() => Date.now());
  const protoHeaders = natsHeaders();
  protoHeaders.set("Content-Type", PROTOBUF_CONTENT_TYPE);

  const clientRejection = (
    orderId: string,
    code: string,
    reason: string,
    details: Record<string, string>,
  ): RiskDecision => ({
    order_id: orderId,
    approved: false,
    rejecting_gate: code === "SCHEMA_INVALID" ? "schema" : "client",
    rejection_code: code,
    reason,
    details,
    envelope_id: "",
    decided_at: new Date(now()).toISOString(),
  });

  async function request(subject: string, body: unknown): Promise<unknown> {
    try {
      const m = await nc.request(subject, te.encode(JSON.stringify(body)), { timeout: timeoutMs });
      return m.json<unknown>();
    } catch (err) {
      throw new RiskClientError(
        errorKind(err) === "other" ? "REQUEST_FAILED" : "ENGINE_UNAVAILABLE",
        `${subject}: ${String(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  return {
    async check(order, o = {}) {
      const orderId = typeof order?.order_id === "string" ? order.order_id : "";
      const valid = checkSchema(order);
      if (!valid.ok) {
        return clientRejection(orderId, "SCHEMA_INVALID", valid.denial.reason, {
          ...valid.denial.details,
          checked_by: "client",
        });
      }
      if (typeof order.idempotency_key !== "string" || order.idempotency_key === "") {
        return clientRejection(orderId, "SCHEMA_INVALID", "idempotency_key: required", {
          path: "idempotency_key",
          checked_by: "client",
        });
      }
      const proto = (o.encoding ?? opts.encoding ?? "json") === "protobuf";
      const subject =
        opts.subject ?? (opts.partitioned ? `${Subjects.check}.${order.fund_id}` : Subjects.check);
      // one body for every attempt: a retry is the same order under the same idempotency_key
      let body: Uint8Array;
      try {
        body = proto ? encodeOrderProto(order) : te.encode(JSON.stringify(order));
      } catch (err) {
        // a value the schema ignores but the encoding cannot carry (a BigInt, a cycle): an answer, not a throw
        return clientRejection(orderId, "SCHEMA_INVALID", `the order cannot be encoded: ${String(err)}`, {
          checked_by: "client",
        });
      }
      const started = performance.now();
      const deadline = started + timeoutMs * (retries + 1);
      let timeouts = 0;
      let attempts = 0;
      let last = "no attempt";
      let malformed: string | undefined; // kept: a later attempt's timeout must not hide it
      while (timeouts <= retries) {
        const left = deadline - performance.now();
        if (left <= 0) break;
        attempts++;
        try {
          const m = await nc.request(subject, body, {
            timeout: Math.max(1, Math.min(timeoutMs, Math.ceil(left))),
            ...(proto ? { headers: protoHeaders } : {}),
          });
          const d: unknown = isProtobufContentType(m.headers?.get("Content-Type"))
            ? decodeDecisionProto(m.data)
            : m.json<unknown>();
          const problem = notADecision(d, orderId);
          if (problem === undefined) return d as RiskDecision;
          throw new MalformedReplyError(problem);
        } catch (err) {
          const kind = errorKind(err);
          last = kind === "other" ? String(err) : kind;
          if (err instanceof MalformedReplyError) malformed = err.message;
          if (kind === "timeout") timeouts++;
          else await delay(Math.max(0, Math.min(100, deadline - performance.now())));
        }
      }
      const ms = Math.round(performance.now() - started);
      return clientRejection(
        orderId,
        "ENGINE_UNAVAILABLE",
        `no risk engine answered within ${ms} ms (${attempts} attempts; last: ${last}` +
          `${malformed !== undefined && !last.includes(malformed) ? `; ${malformed}` : ""})`,
        {
          attempts: String(attempts),
          elapsed_ms: String(ms),
          idempotency_key: order.idempotency_key,
        },
      );
    },

    async getEnvelope(fundId, version) {
      const body = version === undefined ? { fund_id: fundId } : { fund_id: fundId, version };
      const reply = objectReply(await request(Subjects.envelopeGet, body), Subjects.envelopeGet);
      const err = errorOf(reply);
      if (err) {
        if (err.code === "NOT_FOUND") return undefined;
        throw new RiskClientError(err.code ?? "ERROR", err.message ?? "envelope.get failed");
      }
      return reply as unknown as RiskEnvelope;
    },

    async status(fundId) {
      const reply = objectReply(
        await request(Subjects.status, fundId === undefined ? {} : { fund_id: fundId }),
        Subjects.status,
      );
      const err = errorOf(reply);
      if (err) throw new RiskClientError(err.code ?? "ERROR", err.message ?? "status failed");
      if (typeof reply["instance"] !== "string" || typeof reply["ready"] !== "boolean")
        throw new RiskClientError("MALFORMED_REPLY", `${Subjects.status}: not an EngineStatus`);
      return reply as unknown as EngineStatus;
    },

    watchDecisions(fundId, o = {}) {
      return watchSubject<DecisionRecord>(
        nc,
        "RISK_DECISIONS",
        Subjects.decision(fundId),
        o.from ?? "now",
        true,
      );
    },

    watchAlerts(fundId, o = {}) {
      return watchSubject<Alert>(nc, "RISK_CONTROL", Subjects.alert("*", fundId), o.from ?? "now", false);
    },
  };
}
