/**
 * `mts-risk explain <order_id> [--fund F] [--json]`: from the streams alone (no engine needed),
 * the decision on an order, the envelope version and stream cursors it was made at, each gate's
 * figures, and whether replaying the streams to that point gives the same decision (or exactly
 * what differs). Exit 0: found and the replay agrees; 1: not found, or the replay differs;
 * 2: an error (an order id that names orders of several funds without --fund, NATS unreachable).
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Command } from "commander";
import { stateSettings } from "../../engine/engine.js";
import type { Figures } from "../../explain/figures.js";
import { type JournalHit, findDecisions } from "../../explain/journal.js";
import { type ReplayResult, replayTo } from "../../explain/replay.js";
import type { DecisionRecord } from "../../contract/records.js";
import { toWire } from "../../contract/wire.js";
import { canon } from "../../decimal/index.js";
import { type CliContext, CliError, withNats } from "../common.js";
import { printJson } from "../io.js";
import { idArg } from "./control.js";

function verdict(r: DecisionRecord): string {
  const d = r.decision;
  return d.approved ? "APPROVED" : `REJECTED by ${d.rejecting_gate}: ${d.rejection_code}`;
}

function figureLines(f: Figures | undefined): string[] {
  if (!f) return ["  figures: none (the order does not pass the schema)"];
  const out: string[] = [];
  out.push(`  envelope in force: ${f.envelope_id ?? "none"}; NAV ${f.nav ?? "unknown"}`);
  if (f.order) {
    const o = f.order;
    out.push(
      `  order: price ${o.price ?? "none"} × multiplier ${o.multiplier} → notional ${o.notional ?? "unknown"}` +
        ` (asset class ${o.asset_class ?? "unknown"}, sector ${o.sector ?? "unknown"}${o.reducing ? ", risk-reducing" : ""})`,
    );
  }
  if (f.mark) {
    const m = f.mark;
    out.push(
      `  mark: bid ${m.bid} ask ${m.ask} at ${m.timestamp}, age ${m.age_ms} ms (max ${m.max_age_ms} ms): ${m.fresh ? "fresh" : "STALE"}`,
    );
  } else out.push("  mark: none");
  for (const e of f.exposures) {
    out.push(
      `  ${e.limit} ${e.scope}: ${e.current} → ${e.resulting} against ${e.limit_notional}: ${e.within ? "within" : "OVER"}`,
    );
  }
  for (const p of f.pnl) {
    out.push(
      `  P&L ${p.period}: ${p.pnl} on ${p.baseline_equity} (${p.pnl_pct ?? "?"}) against halt at -${p.halt_pct ?? "none"}`,
    );
  }
  out.push(
    `  halts: ${f.halts.length ? f.halts.map((h) => `${h.severity} since ${h.since}`).join(", ") : "none"}`,
  );
  out.push(`  reconciliation lock: ${f.lock ? `locked (${f.lock.reason})` : "none"}`);
  return out;
}

function report(rec: DecisionRecord, seq: number, replays: number, r: ReplayResult): string {
  const d = rec.decision;
  const lines = [
    `order ${d.order_id} of fund ${rec.fund_id}: ${verdict(rec)}`,
    `  reason: ${d.reason}`,
    ...(Object.keys(d.details).length
      ? [
          `  details: ${Object.entries(d.details)
            .map(([k, v]) => `${k}=${v}`)
            .join(" ")}`,
        ]
      : []),
    `  decided at ${d.decided_at} by ${rec.instance} (decision ${rec.decision_id}, RISK_DECISIONS seq ${seq})` +
      (replays ? `; answered again ${replays} time(s) as a replay` : ""),
    `  envelope: ${d.envelope_id || "none"}`,
    `  stream cursors: ${
      rec.cursors
        ? Object.entries(rec.cursors)
            .map(([s, c]) => `${s}=${c}`)
            .join(" ")
        : "not recorded"
    }`,
    `  notional: ${rec.notional ? canon(rec.notional) : "none"}${rec.reservation ? `; reserved ${canon(rec.reservation.quantity)} @ ${canon(rec.reservation.price)}` : ""}`,
    "figures at that point (replayed):",
    ...figureLines(r.figures),
  ];
  if (!r.decision) lines.push("replay: not possible: " + r.caveats.join("; "));
  else if (r.differences.length === 0) lines.push("replay: the same decision");
  else {
    lines.push("replay: DIFFERENT decision:");
    for (const x of r.differences)
      lines.push(`  ${x.field}: journaled ${x.journaled}, replayed ${x.replayed}`);
  }
  for (const c of r.caveats) if (r.decision) lines.push(`  note: ${c}`);
  lines.push(
    `  replayed: ${Object.entries(r.applied)
      .map(([s, n]) => `${s} ${n}`)
      .join(", ")} messages`,
  );
  return lines.join("\n");
}

/**
 * The decision that stands for an order id: the first one its idempotency record kept (`recorded`)
 * that is not a DUPLICATE_ORDER_ID under another key; answers nothing keeps (NO_ENVELOPE,
 * STATE_NOT_READY, SCHEMA_INVALID, a conflict on another order's key) were evaluated afresh on
 * the retry. With none kept, the latest answer.
 */
function standing(made: JournalHit[]): JournalHit {
  return (
    made.find((h) => h.record.recorded && h.record.decision.rejection_code !== "DUPLICATE_ORDER_ID") ??
    made.find((h) => h.record.recorded) ??
    made[made.length - 1]!
  );
}

export function registerExplain(program: Command, ctx: CliContext): void {
  program
    .command("explain")
    .description("explain a decision from the streams alone, and check that replaying them gives it again")
    .argument("<order_id>", "the order's order_id")
    .option("--fund <fund>", "the order's fund (needed when the id is used by several funds)", idArg)
    .option("--json", "print the explanation as JSON")
    .action(async (orderId: string, opts: { fund?: string; json?: boolean }, cmd: Command) => {
      const { config, globals } = ctx.load(cmd);
      ctx.exitCode = await withNats(config, globals, "explain", async (nc) => {
        const jsm = await jetstreamManager(nc);
        const js = jetstream(nc);
        const hits = await findDecisions(js, jsm, orderId, opts.fund);
        const made = hits.filter((h) => !h.record.replayed);
        if (made.length === 0) {
          throw new CliError(
            `no decision on order ${orderId}${opts.fund ? ` of fund ${opts.fund}` : ""} in RISK_DECISIONS`,
            1,
          );
        }
        const funds = [...new Set(made.map((h) => h.record.fund_id))];
        if (funds.length > 1) {
          throw new CliError(
            `order id ${orderId} was decided for several funds (${funds.join(", ")}): add --fund`,
          );
        }
        const hit = standing(made);
        const r = await replayTo({ js, jsm, hit, settings: stateSettings(config) });
        // the replays of that decision: its own key's (a DUPLICATE_ORDER_ID under another key is
        // replayed as that key's decision, not this one's)
        const replays = hits.filter(
          (h) =>
            h.record.replayed &&
            h.record.fund_id === hit.record.fund_id &&
            h.record.idempotency_key === hit.record.idempotency_key,
        ).length;
        if (opts.json) {
          printJson({
            record: toWire(hit.record),
            stream_seq: hit.seq,
            replays,
            others: made.filter((h) => h !== hit).map((h) => ({ seq: h.seq, decision: h.record.decision })),
            figures: r.figures ?? null,
            replay: {
              decision: r.decision ?? null,
              same: r.decision !== undefined && r.differences.length === 0,
              differences: r.differences,
              caveats: r.caveats,
              applied: r.applied,
            },
          });
        } else process.stdout.write(report(hit.record, hit.seq, replays, r) + "\n");
        return r.decision !== undefined && r.differences.length === 0 ? 0 : 1;
      });
    });
}
