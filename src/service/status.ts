/** mts.v1.risk.status: EngineStatus (instance, readiness, halted funds, cursors, state digest). */
import { headers as natsHeaders, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { JSON_CONTENT_TYPE } from "../contract/codec.js";
import { HALT_PRECEDENCE } from "../contract/codes.js";
import { Subjects } from "../contract/subjects.js";
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

export function engineStatus(
  state: EngineState,
  o: { instance: string; ready: boolean; startedAt: number; clock: Clock },
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
    cursors: Object.fromEntries([...state.cursors].sort(([a], [b]) => (a < b ? -1 : 1))),
    state_digest: stateDigest(state),
    uptime_s: Math.max(0, Math.round((now - o.startedAt) / 1000)),
  };
}

const te = new TextEncoder();
const td = new TextDecoder();

/** The `fund_id` of a status request, when it names one (`{}` or anything else: none). */
function requestedFund(data: Uint8Array): string | undefined {
  if (data.length === 0) return undefined;
  try {
    const body: unknown = JSON.parse(td.decode(data));
    if (body !== null && typeof body === "object" && !Array.isArray(body)) {
      const id = (body as Record<string, unknown>).fund_id;
      if (typeof id === "string") return id;
    }
  } catch {
    // not JSON: answered as `{}`
  }
  return undefined;
}

/**
 * Answers `{}` with EngineStatus, and `{ "fund_id" }` with `{ ...EngineStatus, fund }`: the fund's
 * report from `fund(id)`, or null when the fund is unknown (or no `fund` option was given).
 */
export function createStatusService(o: {
  nc: NatsConnection;
  status: () => EngineStatus;
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
      const id = requestedFund(msg.data);
      try {
        const reply = id === undefined ? o.status() : { ...o.status(), fund: o.fund?.(id) ?? null };
        msg.respond(te.encode(JSON.stringify(reply)), { headers: jsonHeaders });
      } catch (e) {
        o.log.error({ err: e, fund: id }, "status reply failed");
      }
    },
  });
  return { stop: async () => sub.drain().then(() => undefined) };
}

export { fundReport, type FundReport } from "./fund-report.js";
