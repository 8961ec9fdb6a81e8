/**
 * The subject and stream catalog other teams read (subjects/catalog.json), generated from the
 * code's own definitions so it cannot drift: `npm run catalog` rewrites it, a test compares.
 */
import { PREFIX, QUEUE_GROUP, streamCatalog } from "./subjects.js";

export interface SubjectEntry {
  subject: string;
  kind: string;
  payload: string;
  stream: string;
  publisher: string;
}

export const SUBJECTS: SubjectEntry[] = [
  {
    subject: `${PREFIX}.risk.check`,
    kind: `request-reply, queue group ${QUEUE_GROUP}`,
    payload: "Order → RiskDecision",
    stream: "decision journaled to RISK_DECISIONS",
    publisher: "OMS",
  },
  {
    subject: `${PREFIX}.risk.check.<fund_id>`,
    kind: "request-reply, fund-partitioned",
    payload: "Order → RiskDecision",
    stream: "decision journaled to RISK_DECISIONS",
    publisher: "OMS",
  },
  {
    subject: `${PREFIX}.risk.envelope.get`,
    kind: "request-reply",
    payload: "{ fund_id, version? } → RiskEnvelope | { error: { code, message } }",
    stream: "",
    publisher: "anyone",
  },
  {
    subject: `${PREFIX}.risk.envelope.updated.<fund_id>`,
    kind: "JetStream publish",
    payload: "RiskEnvelope",
    stream: "RISK_ENVELOPES",
    publisher: "operators, config service",
  },
  {
    subject: `${PREFIX}.risk.status`,
    kind: "request-reply",
    payload: "{} → EngineStatus",
    stream: "",
    publisher: "anyone",
  },
  {
    subject: `${PREFIX}.refdata.instrument.<symbol>`,
    kind: "JetStream publish",
    payload: "Instrument",
    stream: "REFDATA",
    publisher: "reference data",
  },
  {
    subject: `${PREFIX}.quote.<symbol>`,
    kind: "JetStream publish",
    payload: "Quote",
    stream: "QUOTES",
    publisher: "market data",
  },
  {
    subject: `${PREFIX}.fill.<fund_id>.<symbol>`,
    kind: "JetStream publish, Nats-Msg-Id = fill_id",
    payload: "Fill",
    stream: "FILLS",
    publisher: "broker adapters; the reconciler (kind ADJUSTMENT)",
  },
  {
    subject: `${PREFIX}.oms.order.<accepted|cancelled|rejected|expired|done>.<fund_id>`,
    kind: "JetStream publish",
    payload: "OrderEvent",
    stream: "OMS_ORDERS",
    publisher: "OMS",
  },
  {
    subject: `${PREFIX}.oms.order.submit.<fund_id>`,
    kind: "JetStream publish, Nats-Msg-Id = idempotency key",
    payload: "Order",
    stream: "OMS_INTENTS",
    publisher: "engine (synthetic stops)",
  },
  {
    subject: `${PREFIX}.oms.cancel_all.<fund_id>`,
    kind: "JetStream publish",
    payload: "{ fund_id, reason, at }",
    stream: "OMS_INTENTS",
    publisher: "engine (kill switch)",
  },
  {
    subject: `${PREFIX}.risk.halt.<fund_id>`,
    kind: "JetStream publish",
    payload: "Halt",
    stream: "RISK_CONTROL",
    publisher: "engine, operators",
  },
  {
    subject: `${PREFIX}.risk.resume.<fund_id>`,
    kind: "JetStream publish",
    payload: "Resume",
    stream: "RISK_CONTROL",
    publisher: "operators only",
  },
  {
    subject: `${PREFIX}.risk.decision.<fund_id>`,
    kind: "JetStream publish, Nats-Msg-Id = decision_id",
    payload: "DecisionRecord",
    stream: "RISK_DECISIONS",
    publisher: "engine (`_` when the request had no usable fund_id)",
  },
  {
    subject: `${PREFIX}.risk.pnl.baseline.<fund_id>`,
    kind: "JetStream publish",
    payload: "{ fund_id, period, starts_at, equity }",
    stream: "RISK_CONTROL",
    publisher: "engine",
  },
  {
    subject: `${PREFIX}.risk.alert.<kind>.<fund_id>`,
    kind: "JetStream publish",
    payload:
      "Alert { kind, fund_id, message, at, details? }; kind limit_warning (envelope warn_at_pct): details measure, scope, value, limit, share, warn_at_pct",
    stream: "RISK_CONTROL",
    publisher: "engine",
  },
  {
    subject: `${PREFIX}.risk.stop.<armed|triggered|cleared>.<fund_id>`,
    kind: "JetStream publish",
    payload: "Stop",
    stream: "RISK_CONTROL",
    publisher: "engine",
  },
  {
    subject: `${PREFIX}.risk.reconcile.<lock|unlock>.<fund_id>`,
    kind: "JetStream publish",
    payload: "ReconcileEvent { fund_id, locked, reason, at, brokers? }",
    stream: "RISK_CONTROL",
    publisher: "engine (reconciler)",
  },
  {
    subject: `${PREFIX}.risk.dlq.<STREAM>`,
    kind: "JetStream publish",
    payload: "DeadLetter { stream, stream_seq, subject, reason, at, size, payload }",
    stream: "RISK_DLQ",
    publisher: "engine",
  },
  {
    subject: `${PREFIX}.broker.positions.<broker>`,
    kind: "request-reply",
    payload: "{ fund_id } → { positions: [{ symbol, quantity }] }",
    stream: "",
    publisher: "engine asks, broker adapter answers",
  },
  {
    subject: `${PREFIX}.md.quote.<symbol>`,
    kind: "request-reply",
    payload: "{} → Quote",
    stream: "",
    publisher: "engine asks (symbols without a quote stream)",
  },
  {
    subject: `${PREFIX}.llm.cro.veto`,
    kind: "request-reply",
    payload: "{ order, envelope, context } → { veto, confidence, reason }",
    stream: "",
    publisher: "engine asks, optional CRO advisor answers",
  },
];

export function catalogDocument(): unknown {
  return {
    generated_from: "src/contract/catalog.ts and src/contract/subjects.ts (npm run catalog)",
    subjects: SUBJECTS,
    streams: streamCatalog().map((s) => ({
      name: s.name,
      subjects: s.subjects,
      payload: s.payload,
      retention: s.retention,
      max_age_s: s.max_age_ns / 1e9,
      max_msgs_per_subject: s.max_msgs_per_subject,
      duplicate_window_s: s.duplicate_window_ns / 1e9,
    })),
  };
}

export function catalogJson(): string {
  return `${JSON.stringify(catalogDocument(), null, 2)}\n`;
}
