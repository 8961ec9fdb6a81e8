/**
 * Reading RISK_DECISIONS for `mts-risk explain`: every record of an order id (one message holds a
 * record, or with `Mts-Batch` a JSON array of records), and folding decision messages into a state.
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { type DecisionRecord, DecisionRecordSchema } from "../contract/records.js";
import { Subjects } from "../contract/subjects.js";
import { type EngineState, applyDecision } from "../state/index.js";

const td = new TextDecoder();

/** One record found in the journal: its message's stream sequence and its index in a batch. */
export interface JournalHit {
  seq: number;
  index: number;
  subject: string;
  record: DecisionRecord;
}

/** The records of one journal message (one, or a batch); records that do not validate are skipped. */
export function recordsOf(data: Uint8Array): DecisionRecord[] {
  let raw: unknown;
  try {
    raw = JSON.parse(td.decode(data));
  } catch {
    return [];
  }
  const list = Array.isArray(raw) ? raw : [raw];
  const out: DecisionRecord[] = [];
  for (const r of list) {
    const p = DecisionRecordSchema.safeParse(r);
    if (p.success) out.push(p.data);
  }
  return out;
}

/**
 * Reads a stream (optionally one subject filter) from its first message up to `lastSeq`
 * (inclusive; the stream's last sequence when absent), calling `each` in order.
 */
export async function readStream(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  each: (m: JsMsg) => void,
  o: { filter?: string; lastSeq?: number } = {},
): Promise<{ first: number; last: number }> {
  // with a filter, the subjects it matches: none, and a consumer would wait for ever
  const info = await jsm.streams.info(stream, o.filter ? { subjects_filter: o.filter } : undefined);
  const last = Math.min(o.lastSeq ?? Number.MAX_SAFE_INTEGER, info.state.last_seq);
  const first = info.state.first_seq;
  if (info.state.messages === 0 || last < first) return { first, last };
  if (o.filter && Object.keys(info.state.subjects ?? {}).length === 0) return { first, last };
  const c = await js.consumers.get(stream, {
    deliver_policy: DeliverPolicy.All,
    ...(o.filter ? { filter_subjects: o.filter } : {}),
  });
  const iter = await c.consume({ max_messages: 1000 });
  try {
    for await (const m of iter) {
      if (m.seq > last) break;
      each(m);
      if (m.seq >= last || m.info.pending === 0) break;
    }
  } finally {
    await iter.close().catch(() => undefined);
  }
  return { first, last };
}

/** Every record of `orderId` in RISK_DECISIONS (of `fund`, when given), in journal order. */
export async function findDecisions(
  js: JetStreamClient,
  jsm: JetStreamManager,
  orderId: string,
  fund?: string,
): Promise<JournalHit[]> {
  const hits: JournalHit[] = [];
  await readStream(
    js,
    jsm,
    "RISK_DECISIONS",
    (m) => {
      recordsOf(m.data).forEach((record, index) => {
        if (record.decision.order_id === orderId)
          hits.push({ seq: m.seq, index, subject: m.subject, record });
      });
    },
    { filter: fund ? Subjects.decision(fund) : `${Subjects.decision("x").slice(0, -1)}>` },
  );
  return hits;
}

/** Folds a journal message into the state, only its records before `upTo` when given (a batch). */
export function applyDecisionMessage(state: EngineState, seq: number, data: Uint8Array, upTo?: number): void {
  const records = recordsOf(data);
  const n = upTo ?? records.length;
  for (let i = 0; i < n && i < records.length; i++) applyDecision(state, records[i]!);
  if (upTo === undefined) state.cursors.set("RISK_DECISIONS", seq);
}
