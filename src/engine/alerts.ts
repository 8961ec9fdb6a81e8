/** Publishing alerts and dead letters back onto the bus (RISK_CONTROL, RISK_DLQ). */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { Delivered } from "../ingest/paced-lane.js";
import type { StreamName } from "../contract/subjects.js";
import { CONSUMED_STREAMS, Subjects } from "../contract/subjects.js";
import type { InFlight } from "../bus/in-flight.js";
import type { Logger } from "../obs/log.js";
import { type Clock, iso } from "../time/clock.js";

export interface Alerter {
  /** Publishes on mts.v1.risk.alert.<kind>.<fund>; `msgID` dedupes a repeated alert on the stream. */
  alert(kind: string, fund: string, message: string, details?: Record<string, string>, msgID?: string): void;
  deadLetter(stream: StreamName, msg: Delivered, reason: string, fund: string): void;
  count(): { alerts: number; deadLetters: number };
}

const td = new TextDecoder();
const SAFE_TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** The highest stream sequence already parked on RISK_DLQ, per source stream. */
export async function parkedUpTo(jsm: JetStreamManager): Promise<Map<StreamName, number>> {
  const out = new Map<StreamName, number>();
  for (const s of CONSUMED_STREAMS) {
    try {
      const m = await jsm.streams.getMessage("RISK_DLQ", { last_by_subj: Subjects.dlq(s) });
      const seq = m?.json<{ stream_seq?: unknown }>()?.stream_seq;
      if (typeof seq === "number") out.set(s, seq);
    } catch {
      // nothing parked for that stream yet
    }
  }
  return out;
}

/**
 * `parked`: per source stream, the highest sequence RISK_DLQ already holds (see parkedUpTo): a
 * replay after a restart, even from an empty snapshot, does not park the same message again.
 */
export function createAlerter(o: {
  js: JetStreamClient;
  clock: Clock;
  log: Logger;
  parked?: Map<StreamName, number>;
  /** Each alert raised, by kind (metrics). */
  onAlert?: (kind: string) => void;
  /** Tracks each alert's publish until it is acknowledged or fails (the workers' ticks wait on it). */
  inFlight?: InFlight;
}): Alerter {
  const parked = o.parked ?? new Map<StreamName, number>();
  const log = o.log.child({ module: "alerts" });
  let alerts = 0;
  let deadLetters = 0;
  const alert: Alerter["alert"] = (kind, fund, message, details, msgID) => {
    alerts++;
    o.onAlert?.(kind);
    const f = SAFE_TOKEN.test(fund) ? fund : "_";
    const body = { kind, fund_id: fund, message, at: iso(o.clock.now()), ...(details ? { details } : {}) };
    log.warn({ alert: kind, fund }, message);
    const sent = o.js.publish(Subjects.alert(kind, f), JSON.stringify(body), msgID ? { msgID } : undefined);
    (o.inFlight ? o.inFlight.track(sent) : sent).catch((err: unknown) => {
      log.error({ err, kind, fund }, "alert publish failed");
    });
  };
  return {
    alert,
    deadLetter(stream, msg, reason, fund) {
      if (msg.seq <= (parked.get(stream) ?? 0)) return; // parked before
      parked.set(stream, msg.seq);
      deadLetters++;
      const payload = td.decode(msg.data.subarray(0, 64 * 1024));
      const body = {
        stream,
        stream_seq: msg.seq,
        subject: msg.subject,
        reason,
        at: iso(o.clock.now()),
        size: msg.data.length,
        payload,
      };
      // retried under the same Nats-Msg-Id (the stream keeps one copy): a dead letter is not dropped
      // because the server was slow to acknowledge it once
      const data = JSON.stringify(body);
      const msgID = `dlq:${stream}:${msg.seq}`;
      const attempt = (n: number): void => {
        o.js.publish(Subjects.dlq(stream), data, { msgID }).catch((err: unknown) => {
          // keep trying while the engine runs (bounded backoff); every failure is logged
          log.warn({ err, stream, seq: msg.seq, attempt: n }, "dead-letter publish failed; retrying");
          setTimeout(() => attempt(n + 1), Math.min(200 * n, 2000)).unref();
        });
      };
      attempt(1);
      alert(
        "dlq",
        fund,
        `${stream} seq ${msg.seq} parked: ${reason}`,
        { stream, stream_seq: String(msg.seq), reason },
        `dlq-alert:${stream}:${msg.seq}`,
      );
    },
    count: () => ({ alerts, deadLetters }),
  };
}
