/**
 * Hostile input (QUALITY.md "Reliability: Bad input"), fuzzed with fast-check against a real
 * nats-server and an in-process engine:
 * - mts.v1.risk.check: random bytes, arbitrary JSON, wrong types, NaN/Infinity/negative/huge
 *   numbers, unknown enums, missing and extra fields, invalid protobuf, payloads up to 1 MB. Every
 *   request gets a structured RiskDecision; nothing hostile is approved; well-formed orders mixed
 *   in (and a known-good order every K requests) keep being approved.
 * - every consumed stream: garbage interleaved with valid messages. No consumer stalls, every
 *   invalid message is parked once on RISK_DLQ with its reason and stream sequence and alerted,
 *   an envelope with invalid limits is rejected whole, and the engine keeps answering.
 * FUZZ_SEED=<n> replays a run; FUZZ_SCALE=<x> multiplies the number of runs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { PROTOBUF_CONTENT_TYPE, decodeDecisionProto, encodeOrderProto } from "../../src/contract/codec.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { CONSUMED_STREAMS, Subjects, type StreamName } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { openSnapshot } from "../../src/state/snapshot.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";
import {
  CHECK_LIMITS,
  ENVELOPE_FUND,
  MESSAGE_DEFS,
  NONSENSE_LIMITS,
  RISK_ENVELOPES,
  Tally,
  assertDecision,
  bigCase,
  byteLength,
  checkCase,
  garbage,
  readAll,
  type CheckCase,
  type Ctx,
  type Garbage,
  type Ids,
  type StreamMsg,
} from "./fuzz-support.js";

// every run is reproducible: the seed is printed, and FUZZ_SEED replays it
const SEED = process.env["FUZZ_SEED"] ? Number(process.env["FUZZ_SEED"]) : (Date.now() % 2 ** 31) | 0;
console.log(`fuzz seed ${SEED} (FUZZ_SEED=${SEED} replays it)`);
const SCALE = Number(process.env["FUZZ_SCALE"] ?? "1");
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
const params = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns: runs(numRuns),
  endOnFailure: true,
  ...(SEED !== undefined ? { seed: SEED } : {}),
});
/** A known-good order is sent every K check requests. */
const K = 20;
/** Garbage kinds that are JSON objects failing the schema (the others are not JSON objects at all). */
const SCHEMA_KINDS = new Set([
  "bad-field",
  "missing-field",
  "nonsense-limits",
  "deep-nesting+bad-field",
  "1MB-bad-field",
]);
const td = new TextDecoder();
const te = new TextEncoder();
let seq = 0;
const uid = () => ++seq;

const protoHeaders = () => {
  const h = headers();
  h.set("Content-Type", PROTOBUF_CONTENT_TYPE);
  return h;
};

interface Parked {
  stream: StreamName;
  seq: number;
  subject: string;
  kind: string;
  size: number;
  payload: string;
}
interface DeadLetter {
  stream: string;
  stream_seq: number;
  subject: string;
  reason: string;
  at: string;
  size: number;
  payload: string;
}
interface AlertBody {
  kind: string;
  fund_id: string;
  details?: Record<string, string>;
}

describe("fuzz: hostile input on a real nats-server and engine", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let bus: Bus;
  const stateDir = mkdtempSync(join(tmpdir(), "mts-fuzz-state-"));
  const tally = new Tally();
  const parked: Parked[] = [];
  let envelopeVersion = 1;
  let lastApproved: Record<string, unknown> | undefined;
  /** Hostile requests that were approved (collected, so one finding does not hide the others). */
  const hostileApproved: { kind: string; request: string; decision: RiskDecision }[] = [];
  const t0 = Date.now();

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { stateDir });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    jsm = await bus.js.jetstreamManager();
    await bus.envelope(envelope("alpha", CHECK_LIMITS));
    const s = await bus.envelope(envelope(ENVELOPE_FUND, { allowed_brokers: ["paper"] }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
  });
  afterAll(async () => {
    console.log(
      `fuzz inputs tried (${((Date.now() - t0) / 1000).toFixed(1)} s):\n${tally.table()}\n` +
        `${"check requests".padEnd(44)} ${String(tally.total("check.")).padStart(6)}\n` +
        `${"stream garbage messages".padEnd(44)} ${String(parked.length).padStart(6)}\n` +
        `${"hostile check requests approved".padEnd(44)} ${String(hostileApproved.length).padStart(6)}`,
    );
    await nc?.close();
    await engine?.close();
    await server?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  async function knownGood(): Promise<void> {
    const o = order();
    const d = assertDecision(await bus.check(o));
    expect(d, "a known-good order after hostile requests").toMatchObject({
      approved: true,
      order_id: o["order_id"],
    });
    lastApproved = o;
    tally.add("check.known-good-every-K");
  }

  async function send(c: CheckCase): Promise<RiskDecision> {
    const u = uid();
    const ids: Ids = { orderId: `fz-ord-${u}`, key: `fz-key-${u}`, lastApproved };
    const subject = c.token === undefined ? Subjects.check : Subjects.checkFund(c.token);
    const m = await nc.request(subject, c.build(ids), {
      timeout: 10_000,
      ...(c.proto ? { headers: protoHeaders() } : {}),
    });
    tally.add(`check.${c.kind}`);
    let d: RiskDecision;
    if (c.proto) {
      expect(m.headers?.get("Content-Type")).toBe(PROTOBUF_CONTENT_TYPE);
      d = assertDecision(decodeDecisionProto(m.data));
    } else {
      d = assertDecision(m.json());
    }
    if (c.expect.approved) {
      expect(d, `${c.kind} must be approved`).toMatchObject({ approved: true, order_id: ids.orderId });
    } else if (d.approved) {
      hostileApproved.push({ kind: c.kind, request: fc.stringify(c), decision: d });
    } else {
      expect(d.rejection_code).not.toBe("");
      if (c.expect.codes) expect(c.expect.codes).toContain(d.rejection_code);
    }
    return d;
  }

  it("mts.v1.risk.check: every hostile request gets a structured rejection; well-formed ones are approved", async () => {
    await knownGood();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(checkCase, async (c) => {
        await send(c);
        if (++n % K === 0) await knownGood();
      }),
      params(1500),
    );
    // a `__proto__` key in a request must not reach any prototype (the engine runs in this process)
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, "polluted")).toBe(false);
    expect(({} as Record<string, unknown>)["approved"]).toBeUndefined();
    expect(
      hostileApproved.map((a) => `${a.request} -> ${a.decision.order_id} approved`),
      "hostile requests approved",
    ).toEqual([]);
  });

  it("mts.v1.risk.check: requests over 64 KiB and up to 1 MB are rejected, and the service keeps answering", async () => {
    const before = hostileApproved.length;
    await fc.assert(
      fc.asyncProperty(bigCase, async (c) => {
        await send(c);
        await knownGood();
      }),
      params(12),
    );
    expect(
      hostileApproved.slice(before).map((a) => a.request),
      "big requests approved",
    ).toEqual([]);
  });

  it("envelope.get and status answer garbage with structured replies", async () => {
    const junk = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? ""),
      fc
        .record({ fund_id: fc.jsonValue({ maxDepth: 1 }), version: fc.jsonValue({ maxDepth: 1 }) })
        .map((v) => JSON.stringify(v)),
      fc.constantFrom("alpha", ENVELOPE_FUND, "nope").map((f) => JSON.stringify({ fund_id: f })),
    );
    await fc.assert(
      fc.asyncProperty(junk, fc.boolean(), async (body, proto) => {
        const m = await nc.request(Subjects.envelopeGet, body, {
          timeout: 5000,
          ...(proto ? { headers: protoHeaders() } : {}),
        });
        tally.add("envelope.get.garbage");
        if (m.headers?.get("Content-Type") !== PROTOBUF_CONTENT_TYPE) {
          const r = m.json<{ error?: { code: string; message: string }; fund_id?: string }>();
          if (r.error) expect(["INVALID_REQUEST", "NOT_FOUND"]).toContain(r.error.code);
          else expect(typeof r.fund_id).toBe("string");
        }
        const s = await nc.request(Subjects.status, body, { timeout: 5000 });
        tally.add("status.garbage");
        expect(s.json()).toMatchObject({ instance: engine.instance, ready: true });
      }),
      params(100),
    );
  });

  /** Publish a garbage message and remember what the dead letter must say. */
  async function park(stream: StreamName, g: Garbage): Promise<number> {
    const a = await bus.js.publish(g.subject, g.data);
    expect(a.stream, `${g.subject} lands on ${stream}`).toBe(stream);
    const bytes = typeof g.data === "string" ? te.encode(g.data) : g.data;
    parked.push({
      stream,
      seq: a.seq,
      subject: g.subject,
      kind: g.kind,
      size: byteLength(g.data),
      payload: td.decode(bytes.subarray(0, 64 * 1024)),
    });
    tally.add(`stream.${stream}.${g.kind}`);
    return a.seq;
  }
  async function publish(m: StreamMsg): Promise<number> {
    return (await bus.js.publish(m.subject, m.data, m.msgID ? { msgID: m.msgID } : undefined)).seq;
  }
  const currentEnvelope = () => engine.observe.fund(ENVELOPE_FUND)!.envelope_id!;

  it.each(MESSAGE_DEFS.map((d) => [`${d.stream} ${d.label}`, d] as const))(
    "%s: garbage is parked, valid messages around it are applied",
    async (_name, def) => {
      const isEnvelope = def === RISK_ENVELOPES;
      const ctx = (): Ctx => ({ u: uid(), version: envelopeVersion + 1, now: Date.now() });
      const g = garbage(def);
      await fc.assert(
        fc.asyncProperty(
          fc.array(g, { maxLength: 2 }),
          def.valid,
          fc.array(g, { minLength: 1, maxLength: 2 }),
          async (before, valid, after) => {
            let last = 0;
            for (const b of before) last = await park(def.stream, b(ctx()));
            if (isEnvelope && before.length > 0) {
              await waitFor(() => applied(engine, def.stream, last), {
                message: "garbage envelopes consumed",
              });
              expect(currentEnvelope(), "invalid envelopes are rejected whole").toBe(
                `${ENVELOPE_FUND}@v${envelopeVersion}`,
              );
            }
            const v = valid(ctx());
            for (const m of v.msgs) last = await publish(m);
            if (isEnvelope) envelopeVersion++;
            for (const a of after) last = await park(def.stream, a(ctx()));
            tally.add(`stream.${def.stream}.valid-${v.kind}`);
            await waitFor(() => applied(engine, def.stream, last) && v.visible(engine.observe), {
              message: `${def.stream}: the valid ${v.kind} between garbage is applied`,
            });
            if (isEnvelope) expect(currentEnvelope()).toBe(`${ENVELOPE_FUND}@v${envelopeVersion}`);
          },
        ),
        // RISK_ENVELOPES keeps 100 messages per fund: stay under it so that a rebuild sees every version
        params(isEnvelope ? 18 : 25),
      );
    },
  );

  it("every envelope with nonsense limits is rejected whole; the version in force stays", async () => {
    const fund = "fz-env-n";
    const v1 = await publish({
      subject: Subjects.envelopeUpdated(fund),
      data: JSON.stringify(envelope(fund)),
    });
    let last = v1;
    for (const over of NONSENSE_LIMITS) {
      last = await park("RISK_ENVELOPES", {
        kind: "nonsense-limits(all)",
        subject: Subjects.envelopeUpdated(fund),
        data: JSON.stringify({ ...envelope(fund, { version: 2 }), ...over }),
      });
    }
    await waitFor(() => applied(engine, "RISK_ENVELOPES", last));
    expect(engine.observe.fund(fund)!.envelope_id).toBe(`${fund}@v1`);
    const v2 = await publish({
      subject: Subjects.envelopeUpdated(fund),
      data: JSON.stringify(envelope(fund, { version: 2 })),
    });
    await waitFor(() => applied(engine, "RISK_ENVELOPES", v2));
    expect(engine.observe.fund(fund)!.envelope_id).toBe(`${fund}@v2`);
  });

  it("no consumer stalls; every invalid message is parked once on RISK_DLQ with its reason and sequence, and alerted", async () => {
    for (const s of CONSUMED_STREAMS) {
      await waitFor(async () => engine.observe.cursor(s) >= (await jsm.streams.info(s)).state.last_seq, {
        message: `${s} cursor reaches the stream's last sequence`,
        timeoutMs: 60_000,
      });
    }
    const missing = async () => {
      const have = new Set(
        (await readAll<DeadLetter>(bus.js, "RISK_DLQ", ">")).map(
          (l) => `${l.data.stream}:${l.data.stream_seq}`,
        ),
      );
      return parked
        .filter((p) => !have.has(`${p.stream}:${p.seq}`))
        .map((p) => `${p.stream}#${p.seq} ${p.kind} ${p.subject} ${p.payload.slice(0, 300)}`);
    };
    await waitFor(async () => (await jsm.streams.info("RISK_DLQ")).state.messages >= parked.length, {
      timeoutMs: 60_000,
    }).catch(async (err: unknown) => {
      throw new Error(
        `seed ${SEED}: ${parked.length} dead letters expected; missing ${JSON.stringify(await missing())}`,
        {
          cause: err,
        },
      );
    });
    const perStream = (await jsm.streams.info("RISK_DLQ", { subjects_filter: ">" })).state.subjects ?? {};
    const expected: Record<string, number> = {};
    for (const p of parked) expected[Subjects.dlq(p.stream)] = (expected[Subjects.dlq(p.stream)] ?? 0) + 1;
    expect(perStream, "RISK_DLQ messages per source stream = invalid messages published").toEqual(expected);

    const letters = await readAll<DeadLetter>(bus.js, "RISK_DLQ", ">");
    const byKey = new Map(letters.map((l) => [`${l.data.stream}:${l.data.stream_seq}`, l]));
    expect(byKey.size, "one dead letter per invalid message").toBe(parked.length);
    for (const p of parked) {
      const l = byKey.get(`${p.stream}:${p.seq}`);
      expect(l, `dead letter for ${p.stream} seq ${p.seq} (${p.kind})`).toBeDefined();
      expect(l!.subject).toBe(Subjects.dlq(p.stream));
      expect(l!.data).toMatchObject({
        stream: p.stream,
        stream_seq: p.seq,
        subject: p.subject,
        size: p.size,
      });
      expect(l!.data.payload).toBe(p.payload);
      expect(l!.data.reason.length, `reason for ${p.kind}`).toBeGreaterThan(0);
      expect(Number.isFinite(Date.parse(l!.data.at))).toBe(true);
      if (p.stream === "RISK_ENVELOPES" && SCHEMA_KINDS.has(p.kind)) {
        expect(l!.data.reason).toMatch(/^envelope rejected whole: /);
      }
    }

    const alerts = await readAll<AlertBody>(bus.js, "RISK_CONTROL", "mts.v1.risk.alert.dlq.>");
    const alerted = new Set(
      alerts.map((a) => `${a.data.details?.["stream"]}:${a.data.details?.["stream_seq"]}`),
    );
    for (const p of parked)
      expect(alerted.has(`${p.stream}:${p.seq}`), `dlq alert for ${p.stream} ${p.seq}`).toBe(true);
    expect(alerts.length).toBe(parked.length);
    expect(engine.alerter.count().deadLetters).toBe(parked.length);
    for (const [subject, n] of Object.entries(perStream)) tally.add(`dlq.${subject.split(".").pop()}`, n);
  }, 150_000);

  it("the engine never exits: it still answers checks and mts.v1.risk.status", async () => {
    await knownGood();
    const st = (await nc.request(Subjects.status, "{}", { timeout: 5000 })).json<{
      ready: boolean;
      cursors: Record<string, number>;
      state_digest: string;
    }>();
    expect(st.ready).toBe(true);
    for (const s of CONSUMED_STREAMS) expect(st.cursors[s]).toBeGreaterThan(0);
    expect(st.state_digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it("after the fuzz, a restart from the snapshot and a clean rebuild reach the same digest", async () => {
    const rebuilt = await startTestEngine(server.url);
    try {
      await engine.close();
      engine = await startTestEngine(server.url, { stateDir });
      await waitFor(
        () =>
          engine.status().state_digest === rebuilt.status().state_digest &&
          CONSUMED_STREAMS.every((s) => engine.observe.cursor(s) === rebuilt.observe.cursor(s)),
        { message: "restarted and rebuilt engines agree", timeoutMs: 20_000 },
      );
      expect(engine.status().state_digest).toBe(rebuilt.status().state_digest);
    } finally {
      await rebuilt.close();
    }
  });
});

/** A server and an engine of its own, so that one finding's poison cannot leak into another's. */
async function isolated(
  f: (h: { url: string; stateDir: string; bus: Bus; engine: Engine }) => Promise<void>,
) {
  const server = await startTestNats();
  const stateDir = mkdtempSync(join(tmpdir(), "mts-fuzz-finding-"));
  const nc = await connectTest(server.url);
  const h = {
    url: server.url,
    stateDir,
    bus: new Bus(nc),
    engine: await startTestEngine(server.url, { stateDir }),
  };
  try {
    await f(h);
  } finally {
    await nc.close();
    await h.engine.close().catch(() => undefined);
    await server.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Minimal reproductions of what the fuzz found (each fails while the bug is there). */
describe("regressions found by the fuzzer", () => {
  it("a truncated protobuf order is rejected, not decoded with its last field cut short", async () => {
    await isolated(async ({ bus, engine }) => {
      const s = await bus.envelope(envelope("alpha"));
      await waitFor(() => applied(engine, "RISK_ENVELOPES", s));
      const full = encodeOrderProto(order({ quantity: "100", limit_price: "190.12" }));
      // one byte short: limit_price's length says 6 bytes, 5 are there ("190.1")
      const m = await bus.nc.request(Subjects.check, full.subarray(0, full.length - 1), {
        timeout: 5000,
        headers: protoHeaders(),
      });
      expect(decodeDecisionProto(m.data)).toMatchObject({
        approved: false,
        rejection_code: "SCHEMA_INVALID",
      });
    });
  });

  it("a decision the engine journals is accepted back by its own projector (huge order on a multiplier)", async () => {
    await isolated(async ({ url, bus, engine }) => {
      await bus.envelope(envelope("huge"));
      const s = await bus.instrument({ symbol: "HUGE", asset_class: "future", multiplier: "1000000" });
      await waitFor(() => applied(engine, "REFDATA", s));
      // 30-digit quantity and price: wire-valid; notional = q × p × multiplier has 67 integer digits
      const d = assertDecision(
        await bus.check(
          order({ fund_id: "huge", symbol: "HUGE", quantity: "9".repeat(30), limit_price: "9".repeat(30) }),
        ),
      );
      const jsm = await bus.js.jetstreamManager();
      const last = (await jsm.streams.info("RISK_DECISIONS")).state.last_seq;
      await waitFor(() => applied(engine, "RISK_DECISIONS", last));
      const letters = await readAll<DeadLetter>(bus.js, "RISK_DLQ", Subjects.dlq("RISK_DECISIONS"));
      expect(
        letters.map((l) => l.data.reason),
        `the engine's own record of its ${d.approved ? "approval" : "rejection"} is dead-lettered`,
      ).toEqual([]);
      const rebuilt = await startTestEngine(url);
      try {
        expect(rebuilt.status().state_digest, "a clean rebuild equals the live state").toBe(
          engine.status().state_digest,
        );
      } finally {
        await rebuilt.close();
      }
    });
  });

  it("a valid envelope with a deeply nested unknown field does not stop snapshot flushes", async () => {
    await isolated(async ({ bus, engine, stateDir }) => {
      const body = JSON.stringify(envelope("deep")).slice(1);
      const nested = `${"[".repeat(20_000)}${"]".repeat(20_000)}`;
      const e = await bus.js.publish(Subjects.envelopeUpdated("deep"), `{"x_deep":${nested},${body}`);
      await waitFor(() => applied(engine, "RISK_ENVELOPES", e.seq));
      const f = await bus.fill({ fund_id: "deep", quantity: "1", price: "1" });
      await waitFor(() => applied(engine, "FILLS", f));
      await engine.flush();
      const snap = openSnapshot(join(stateDir, "snapshot.sqlite"));
      try {
        expect(
          snap.load().cursors.get("FILLS") ?? 0,
          "the snapshot's FILLS cursor after a flush",
        ).toBeGreaterThanOrEqual(f);
      } finally {
        snap.close();
      }
    });
  });

  it("the engine restarts from its snapshot after fills whose cost exceeds 60 integer digits", async () => {
    await isolated(async (h) => {
      const big = { fund_id: "wide", symbol: "WIDE", quantity: "9".repeat(30), price: "9".repeat(30) };
      await h.bus.fill(big);
      const f = await h.bus.fill(big);
      await waitFor(() => applied(h.engine, "FILLS", f));
      await h.engine.flush();
      const before = h.engine.status().state_digest;
      await h.engine.close();
      const restarted = startTestEngine(h.url, { stateDir: h.stateDir });
      await expect(restarted, "start-up loads the snapshot").resolves.toBeDefined();
      h.engine = await restarted;
      expect(h.engine.status().state_digest).toBe(before);
    });
  });
});
