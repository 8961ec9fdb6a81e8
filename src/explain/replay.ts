/**
 * Replays the streams to the point a decision was made and decides the order again.
 *
 * "The point": every followed stream up to the cursor the record carries, and RISK_DECISIONS up to
 * the record itself (exclusive). The engine applies its own decisions to memory before reading them
 * back, so its RISK_DECISIONS cursor may be behind decisions it had already made; those are exactly
 * the records journaled before this one (one owner per fund, journal order = decision order).
 * The decider then runs with the clock at the record's `at_ms`. Asynchronous gates (the CRO veto)
 * are not replayed: their answers are not in the streams.
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { DecisionRecord } from "../contract/records.js";
import type { RiskDecision } from "../contract/schemas.js";
import { CONSUMED_STREAMS } from "../contract/subjects.js";
import { DETERMINISTIC_GATES, createPipeline } from "../gates/index.js";
import { createDecider } from "../service/decide.js";
import { type EngineState, type StateSettings, createState, project } from "../state/index.js";
import { type Figures, figuresOf } from "./figures.js";
import { type JournalHit, applyDecisionMessage, readStream } from "./journal.js";
import { storedMsOf } from "../ingest/follower.js";

export interface ReplayResult {
  state: EngineState;
  /** Each gate's figures at that point (before the order itself is applied). */
  figures: Figures | undefined;
  decision: RiskDecision | undefined;
  /** Field-by-field differences from the journaled decision (empty: the same decision). */
  differences: { field: string; journaled: string; replayed: string }[];
  /** Why the replay may not be exact (messages the streams no longer hold, a CRO decision, ...). */
  caveats: string[];
  applied: Record<string, number>;
}

/** Compared fields; `details.replayed` and `decided_at` aside (the latter is set from at_ms). */
const FIELDS = ["approved", "rejecting_gate", "rejection_code", "reason", "envelope_id", "order_id"] as const;

export function compareDecisions(
  journaled: RiskDecision,
  replayed: RiskDecision,
): { field: string; journaled: string; replayed: string }[] {
  const out: { field: string; journaled: string; replayed: string }[] = [];
  for (const f of FIELDS) {
    if (journaled[f] !== replayed[f])
      out.push({ field: f, journaled: String(journaled[f]), replayed: String(replayed[f]) });
  }
  const keys = new Set([...Object.keys(journaled.details), ...Object.keys(replayed.details)]);
  keys.delete("replayed");
  for (const k of [...keys].sort()) {
    const a = journaled.details[k];
    const b = replayed.details[k];
    if (a !== b) out.push({ field: `details.${k}`, journaled: a ?? "(none)", replayed: b ?? "(none)" });
  }
  return out;
}

export async function replayTo(o: {
  js: JetStreamClient;
  jsm: JetStreamManager;
  hit: JournalHit;
  settings: StateSettings;
}): Promise<ReplayResult> {
  const rec: DecisionRecord = o.hit.record;
  const state = createState(o.settings);
  const caveats: string[] = [];
  const applied: Record<string, number> = {};
  const cursors = rec.cursors ?? {};
  if (!rec.cursors)
    caveats.push("the record carries no stream cursors (journaled before they were recorded)");

  const existing = new Set<string>();
  for await (const name of o.jsm.streams.names()) existing.add(name);
  for (const stream of CONSUMED_STREAMS) {
    if (!existing.has(stream)) continue;
    let n = 0;
    if (stream === "RISK_DECISIONS") {
      const upTo = o.hit.seq - 1;
      const r = await readStream(
        o.js,
        o.jsm,
        stream,
        (m) => {
          applyDecisionMessage(state, m.seq, m.data);
          n++;
        },
        { lastSeq: upTo },
      );
      if (r.first > 1 && upTo >= 1) caveats.push(`${stream} no longer holds sequences 1..${r.first - 1}`);
      // records before this one in its own (batch) message
      if (o.hit.index > 0) {
        const m = await o.jsm.streams.getMessage(stream, { seq: o.hit.seq });
        if (m) applyDecisionMessage(state, o.hit.seq, m.data, o.hit.index);
      }
    } else {
      const target = cursors[stream] ?? 0;
      if (target === 0) continue;
      const r = await readStream(
        o.js,
        o.jsm,
        stream,
        (m) => {
          project(state, stream, m.subject, m.data, m.seq, storedMsOf(stream, m));
          n++;
        },
        { lastSeq: target },
      );
      if (r.first > 1) caveats.push(`${stream} no longer holds sequences 1..${r.first - 1} (retention)`);
    }
    applied[stream] = n;
  }

  const croVeto = rec.decision.rejecting_gate === "cro_veto";
  if (croVeto)
    caveats.push(
      "the CRO veto's answer is the journaled one (the advisor is not asked again); every gate before it is replayed",
    );
  if (!rec.order) {
    return {
      state,
      figures: undefined,
      decision: undefined,
      differences: [],
      caveats: [
        ...caveats,
        "the record holds no order (schema-invalid request, or journaled before orders were)",
      ],
      applied,
    };
  }
  const figures = figuresOf(state, rec.order, rec.at_ms);
  let n = 0;
  const decider = createDecider({
    state,
    pipeline: createPipeline(DETERMINISTIC_GATES),
    clock: { now: () => rec.at_ms },
    instance: "explain",
    ready: () => true,
    nextId: () => `explain-${++n}`,
  });
  const out = await decider.decide({ raw: structuredClone(rec.order) });
  // The CRO gate runs after every deterministic gate: when they all pass again, its journaled
  // answer (the veto, with its reason and details) is the decision, as the engine made it.
  const decision: RiskDecision =
    croVeto && out.decision.approved
      ? {
          ...out.decision,
          approved: false,
          rejecting_gate: rec.decision.rejecting_gate,
          rejection_code: rec.decision.rejection_code,
          reason: rec.decision.reason,
          details: rec.decision.details,
        }
      : out.decision;
  return {
    state,
    figures,
    decision,
    differences: compareDecisions(rec.decision, decision),
    caveats,
    applied,
  };
}
