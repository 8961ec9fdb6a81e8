/** mts.v1.risk.status: EngineStatus (instance, readiness, halted funds, cursors, state digest). */
import { headers as natsHeaders, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { JSON_CONTENT_TYPE } from "../contract/codec.js";
import { HALT_PRECEDENCE } from "../contract/codes.js";
import { CONSUMED_STREAMS, Subjects } from "../contract/subjects.js";
import type { Logger } from "../obs/log.js";
import type { FundReport } from "./fund-report.js";
import { type EngineState, stateDigest, sweepIdempotency, sweepReservations } from "../state/index.js";
import type { Clock } from "../time/clock.js";

export interface EngineStatus {
  instance: string;
  ready: boolean;
  halted_funds: { fund_id: string; severity: string; since: string }[];
  cursors: Record<string, number>;
  state_digest: string;
  uptime_s: number;
  /** Several engines: partitions this engine owns (decides) now, which, and their lease epochs. */
  owned?: number;
  partitions?: number[];
  epochs?: Record<string, number>;
  /** Stream messages still to apply (catching up). */
  lag?: number;
}

/**
 * Every stream the engine follows, 0 for one it has applied nothing of yet (an OMS or a tool reads
 * `cursors.FILLS` as a number), and any other the state holds a cursor for; in name order.
 */
export function cursorsOf(state: EngineState): Record<string, number> {
  const all = new Map<string, number>(CONSUMED_STREAMS.map((s) => [s, 0]));
  for (const [k, v] of state.cursors) all.set(k, v);
  return Object.fromEntries([...all].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/**
 * `digest: false` (a status request `{ "digest": false }`): `state_digest` is "" and not computed.
 * The digest is O(state), every idempotency record of the window included: who polls what engines
 * own (`mts-risk status --all`, the rolling-restart scripts) asks without it.
 */
export function engineStatus(
  state: EngineState,
  o: { instance: string; ready: boolean; startedAt: number; clock: Clock; digest?: boolean },
): EngineStatus {
  const now = o.clock.now();
  sweepReservations(state, now);
  sweepIdempotency(state, now);
  const halted: EngineStatus["halted_funds"] = [];
  for (const f of [...state.funds.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const sev = HALT_PRECEDENCE.find((s) => f.halts.has(s));
    const h = sev ? f.halts.get(sev) : undefined;
    if (h) halted.push({ fund_id: f.id, severity: h.severity, since: h.since });
  }
  return {
    instance: o.instance,
    ready: o.ready,
    halted_funds: halted,
    cursors: cursorsOf(state),
    state_digest: o.digest === false ? "" : stateDigest(state),
    uptime_s: Math.max(0, Math.round((now - o.startedAt) / 1000)),
  };
}

const te = new TextEncoder();
const td = new TextDecoder();

/** What a status request asks: a fund's report (`fund_id`), and the digest unless `"digest": false`. */
export function statusRequest(data: Uint8Array): { fund: string | undefined; digest: boolean } {
  const none = { fund: undefined, digest: true };
  if (data.length === 0) return none;
  try {
    const body: unknown = JSON.parse(td.decode(data));
    if (body !== null && typeof body === "object" && !Array.isArray(body)) {
      const b = body as Record<string, unknown>;
      return { fund: typeof b.fund_id === "string" ? b.fund_id : undefined, digest: b.digest !== false };
    }
  } catch {
    // not JSON: answered as `{}`
  }
  return none;
}

/**
 * Answers `{}` with EngineStatus, and `{ "fund_id" }` with `{ ...EngineStatus, fund }`: the fund's
 * report from `fund(id)`, or null when the fund is unknown (or no `fund` option was given).
 */
export function createStatusService(o: {
  nc: NatsConnection;
  status: (o: { digest: boolean }) => EngineStatus;
  fund?: (id: string) => FundReport | undefined;
  log: Logger;
}): {
  stop(): Promise<void>;
} {
  const jsonHeaders = natsHeaders();
  jsonHeaders.set("Content-Type", JSON_CONTENT_TYPE);
  const sub: Subscription = o.nc.subscribe(Subjects.status, {
    callback: (err, msg) => {
      if (err) return o.log.error({ err }, "status subscription error");
      const { fund: id, digest } = statusRequest(msg.data);
      try {
        const base = o.status({ digest });
        const reply = id === undefined ? base : { ...base, fund: o.fund?.(id) ?? null };
        msg.respond(te.encode(JSON.stringify(reply)), { headers: jsonHeaders });
      } catch (e) {
        o.log.error({ err: e, fund: id }, "status reply failed");
      }
    },
  });
  return { stop: async () => sub.drain().then(() => undefined) };
}

export { fundReport, type FundReport } from "./fund-report.js";
