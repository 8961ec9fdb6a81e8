/**
 * Open-loop load generator. A worker thread (sender.ts) sends request i at start + i / rate; this
 * thread receives the replies on its own connection and records, per request, reply time minus
 * *intended* send time in an HDR histogram, so a stall delays every request scheduled behind it
 * and shows up in the percentiles (no coordinated omission). A request not answered within the
 * timeout is a failure and is recorded at the timeout; error replies (no responders, the engine's
 * own STATE_NOT_READY / internal errors) are failures too. The schedule lag (actual − intended send
 * time) is reported for every run: it is the generator's proof that it kept the schedule.
 */
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import type { Histogram } from "hdr-histogram-js";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import type { SendCommand, SendReport } from "./sender.js";
import { type Summary, curve, histogram, nowMs, summarize } from "./util.js";

export interface RunOptions {
  /** What is measured: "engine", "noop", "journal". */
  target: string;
  subject: string;
  rate: number;
  seconds: number;
  timeoutMs: number;
  /**
   * Cut a hopeless run short: once `abortAfterS` seconds have been swept, if more than
   * `abortTimeoutPct` % of them timed out, stop sending. Requests never sent count as failures.
   */
  abortAfterS?: number;
  abortTimeoutPct?: number;
}

export interface RunResult {
  target: string;
  rate: number;
  seconds: number;
  sent: number;
  ok: number;
  approved: number;
  rejected: number;
  errors: number;
  timeouts: number;
  /** Requests not sent because the run was cut short (failures). */
  unsent: number;
  /** Seconds after which the run was cut short, if it was. */
  aborted_at_s?: number;
  late_replies: number;
  failures: number;
  failure_pct: number;
  /** Sends per second the generator achieved (first to last send). */
  send_rate: number;
  /** Latency from the intended send time, ms (failures included at their latency or the timeout). */
  latency_ms: Summary;
  curve_ms: [number, number][];
  /** Actual − intended send time, ms. */
  schedule_lag_ms: Summary;
  rejection_codes: Record<string, number>;
  error_codes: Record<string, number>;
}

/** A run with its histograms, so that runs of one target and rate can be merged. */
export interface RawRun {
  result: RunResult;
  latency: Histogram;
  lag: Histogram;
}

const addCounts = (a: Record<string, number>, b: Record<string, number>): Record<string, number> => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
};

/** Several runs of one target at one rate as one (histograms added, counts summed). */
export function mergeRuns(runs: RawRun[]): RunResult {
  const [first, ...rest] = runs;
  if (!first) throw new Error("nothing to merge");
  const latency = histogram();
  const lag = histogram();
  for (const r of runs) {
    latency.add(r.latency);
    lag.add(r.lag);
  }
  const r0 = first.result;
  const sum = (
    k:
      | "sent"
      | "ok"
      | "approved"
      | "rejected"
      | "errors"
      | "timeouts"
      | "unsent"
      | "late_replies"
      | "failures",
  ) => runs.reduce((a, r) => a + r.result[k], 0);
  const sent = sum("sent");
  const aborted = runs.find((r) => r.result.aborted_at_s !== undefined)?.result.aborted_at_s;
  return {
    ...r0,
    ...(aborted !== undefined ? { aborted_at_s: aborted } : {}),
    seconds: runs.reduce((a, r) => a + r.result.seconds, 0),
    sent,
    ok: sum("ok"),
    approved: sum("approved"),
    rejected: sum("rejected"),
    errors: sum("errors"),
    timeouts: sum("timeouts"),
    unsent: sum("unsent"),
    late_replies: sum("late_replies"),
    failures: sum("failures"),
    failure_pct: +((sum("failures") / Math.max(1, sent + sum("unsent"))) * 100).toFixed(3),
    send_rate: Math.round(runs.reduce((a, r) => a + r.result.send_rate, 0) / runs.length),
    latency_ms: summarize(latency),
    curve_ms: curve(latency),
    schedule_lag_ms: summarize(lag),
    rejection_codes: rest.reduce((a, r) => addCounts(a, r.result.rejection_codes), r0.rejection_codes),
    error_codes: rest.reduce((a, r) => addCounts(a, r.result.error_codes), r0.error_codes),
  };
}

const td = new TextDecoder();
const APPROVED = '"approved":true';
const ENGINE_GATE = '"rejecting_gate":"engine"';
const PENDING = 0;
const DONE = 1;

interface Reply {
  approved?: unknown;
  rejecting_gate?: unknown;
  rejection_code?: unknown;
}

export class LoadGenerator {
  private readonly worker: Worker;
  private runs = 0;
  private readonly ready: Promise<void>;
  private readonly tag = randomBytes(4).toString("hex");

  constructor(
    private readonly nc: NatsConnection,
    url: string,
  ) {
    this.worker = new Worker(new URL("./sender.js", import.meta.url), { workerData: { url } });
    this.ready = new Promise((done, fail) => {
      this.worker.once("message", () => done());
      this.worker.once("error", fail);
    });
  }

  async close(): Promise<void> {
    this.worker.postMessage("close");
    await new Promise((done) => this.worker.once("exit", done));
  }

  async run(o: RunOptions): Promise<RawRun> {
    await this.ready;
    const n = ++this.runs;
    const count = Math.max(1, Math.round(o.rate * o.seconds));
    const period = 1000 / o.rate;
    const inbox = `_BENCH.${this.tag}.${n}`;
    const state = new Uint8Array(count);
    const lat = histogram();
    // BENCH_LATENCY_DUMP=<dir>: each request's latency (µs, by index: its intended send time) to a
    // file a run, to see when the slow ones happened (a diagnosis, not a figure)
    const dumpDir = process.env["BENCH_LATENCY_DUMP"];
    const each = dumpDir ? new Float64Array(count).fill(-1) : undefined;
    const timeoutUs = o.timeoutMs * 1000;
    let resolved = 0;
    let approved = 0;
    let rejected = 0;
    let errors = 0;
    let timeouts = 0;
    let late = 0;
    const rejectionCodes: Record<string, number> = {};
    const errorCodes: Record<string, number> = {};
    const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);
    let startMs = 0;
    let finished: () => void = () => undefined;
    const allResolved = new Promise<void>((done) => (finished = done));
    const settle = (i: number) => {
      state[i] = DONE;
      if (++resolved === count) finished();
    };

    const onReply = (m: Msg): void => {
      const t = nowMs();
      const i = Number(m.subject.slice(inbox.length + 1));
      if (!(i >= 0 && i < count) || state[i] !== PENDING) {
        late++;
        return;
      }
      lat.recordValue(Math.max(0, Math.round((t - (startMs + i * period)) * 1000)));
      if (each) each[i] = (t - (startMs + i * period)) * 1000;
      if (m.headers?.hasError || m.data.length === 0) {
        errors++;
        bump(errorCodes, `status ${m.headers?.code ?? "empty"}`);
      } else {
        const text = td.decode(m.data);
        // Fast path (the generator must cost little): an approval is counted without a parse.
        if (text.includes(APPROVED) && !text.includes(ENGINE_GATE)) {
          approved++;
          settle(i);
          return;
        }
        let d: Reply | undefined;
        try {
          d = JSON.parse(text) as Reply;
        } catch {
          d = undefined;
        }
        if (!d || typeof d.approved !== "boolean") {
          errors++;
          bump(errorCodes, "not a decision");
        } else if (d.rejecting_gate === "engine") {
          errors++;
          bump(errorCodes, String(d.rejection_code));
        } else if (d.approved) {
          approved++;
        } else {
          rejected++;
          bump(rejectionCodes, String(d.rejection_code));
        }
      }
      settle(i);
    };
    const sub = this.nc.subscribe(`${inbox}.*`, { callback: (_err, m) => onReply(m) });
    await this.nc.flush();

    const sent = new SharedArrayBuffer(8 * count);
    const abort = new Int32Array(new SharedArrayBuffer(4));
    startMs = nowMs() + 20;
    let swept = 0;
    let abortedAt: number | undefined;
    const sweeper = setInterval(() => {
      const now = nowMs();
      while (swept < count && startMs + swept * period + o.timeoutMs < now) {
        if (state[swept] === PENDING) {
          timeouts++;
          lat.recordValue(timeoutUs);
          settle(swept);
        }
        swept++;
      }
      const sweptS = (swept * period) / 1000;
      if (
        abortedAt === undefined &&
        o.abortAfterS !== undefined &&
        sweptS >= o.abortAfterS &&
        (timeouts / swept) * 100 > (o.abortTimeoutPct ?? 5)
      ) {
        abortedAt = +((now - startMs) / 1000).toFixed(1);
        Atomics.store(abort, 0, 1);
      }
    }, 20);
    const cmd: SendCommand = {
      subject: o.subject,
      rate: o.rate,
      count,
      startMs,
      inbox,
      prefix: `${this.tag}r${n}`,
      sent,
      abort: abort.buffer,
    };
    const report = await new Promise<SendReport>((done, fail) => {
      this.worker.once("message", (r: { ok: boolean; report?: SendReport; error?: string }) =>
        r.ok && r.report ? done(r.report) : fail(new Error(`sender failed: ${r.error ?? "?"}`)),
      );
      this.worker.postMessage(cmd);
    });
    // Cut short: what was never sent is a failure, recorded at the timeout.
    let unsent = 0;
    for (let i = report.sent; i < count; i++) {
      if (state[i] === PENDING) {
        unsent++;
        lat.recordValue(timeoutUs);
        settle(i);
      }
    }
    await allResolved;
    clearInterval(sweeper);
    sub.unsubscribe();
    if (dumpDir && each) {
      const file = join(dumpDir, `${o.target}-${o.rate}-${this.tag}-${n}.json`);
      writeFileSync(
        file,
        JSON.stringify({ target: o.target, rate: o.rate, period_ms: period, us: [...each] }),
      );
    }

    const lag = histogram();
    const sentAt = new Float64Array(sent);
    for (let i = 0; i < report.sent; i++) {
      lag.recordValue(Math.max(0, Math.round((sentAt[i]! - (startMs + i * period)) * 1000)));
    }
    const failures = errors + timeouts + unsent;
    const spanS = (report.lastMs - report.firstMs) / 1000;
    const result: RunResult = {
      target: o.target,
      rate: o.rate,
      seconds: o.seconds,
      sent: report.sent,
      ok: approved + rejected,
      approved,
      rejected,
      errors,
      timeouts,
      unsent,
      ...(abortedAt !== undefined ? { aborted_at_s: abortedAt } : {}),
      late_replies: late,
      failures,
      failure_pct: +((failures / count) * 100).toFixed(3),
      send_rate: spanS > 0 ? Math.round((report.sent - 1) / spanS) : report.sent,
      latency_ms: summarize(lat),
      curve_ms: curve(lat),
      schedule_lag_ms: summarize(lag),
      rejection_codes: rejectionCodes,
      error_codes: errorCodes,
    };
    return { result, latency: lat, lag };
  }
}
