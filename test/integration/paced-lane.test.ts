/**
 * The paced lane (src/ingest/paced-lane.ts) on a real nats-server: every message once, in order,
 * from the cursor; a lone message at once whatever the pace; a busy stream in few pulls; and the
 * recovery an ordered consumer gives (its consumer deleted, the server restarted).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { type Delivered, type PacedLane, openPacedLane, parseReply } from "../../src/ingest/paced-lane.js";
import { silentLogger } from "../../src/obs/log.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";

const STREAM = "PACED_T";
const td = new TextDecoder();

describe("paced lane", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let lane: PacedLane | undefined;
  let got: Delivered[];

  beforeEach(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url, { timeout: 1000 });
    jsm = await jetstreamManager(nc);
    js = jetstream(nc);
    await jsm.streams.add({ name: STREAM, subjects: ["paced.>"], storage: "file" });
    got = [];
  });
  afterEach(async () => {
    await lane?.close();
    lane = undefined;
    await nc?.close();
    await server?.stop();
  });

  const open = async (o: { cursor?: number; paceMs?: number; stallMs?: number; waitMs?: number } = {}) => {
    lane = await openPacedLane({
      nc,
      jsm,
      stream: STREAM,
      cursor: () => o.cursor ?? 0,
      paceMs: o.paceMs ?? 50,
      ...(o.stallMs !== undefined ? { stallMs: o.stallMs } : {}),
      ...(o.waitMs !== undefined ? { waitMs: o.waitMs } : {}),
      log: silentLogger,
      onMessage: (m) => got.push(m),
    });
    return lane;
  };
  const publish = async (n: number, from = 0): Promise<number> => {
    let last = 0;
    for (let i = 0; i < n; i++) last = (await js.publish(`paced.s${(from + i) % 7}`, String(from + i))).seq;
    return last;
  };
  /** Every message delivered exactly once, in stream order, starting right after `after`. */
  const expectContiguous = (after: number, through: number): void => {
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: through - after }, (_, k) => after + 1 + k));
  };

  it("delivers from the cursor, in order, with the stored subject, body, timestamp and pending count", async () => {
    await publish(10);
    await open({ cursor: 4 });
    await waitFor(() => got.length === 6, { message: "6 messages after the cursor" });
    expectContiguous(4, 10);
    expect(got.map((m) => td.decode(m.data))).toEqual(["4", "5", "6", "7", "8", "9"]);
    expect(got[0]!.subject).toBe("paced.s4");
    expect(got[5]!.info.pending).toBe(0);
    const stored = await jsm.streams.getMessage(STREAM, { seq: 7 });
    // nanoseconds as a double (as nats.js parses them) may round across a millisecond boundary
    expect(
      Math.abs(Math.floor(got[2]!.info.timestampNanos / 1e6) - stored!.time.getTime()),
    ).toBeLessThanOrEqual(1);
  });

  it("the first message after a quiet spell is delivered as soon as it is stored, whatever the pace", async () => {
    await open({ paceMs: 60_000 });
    const seq = await publish(1);
    // far under the pace: the lane waits for one message, it does not sleep a pace first
    await waitFor(() => got.length === 1, { timeoutMs: 10_000, message: `message ${seq}` });
    expectContiguous(0, 1);
  });

  it("quiet, then one message at a time: each is delivered", async () => {
    await open({ paceMs: 30 });
    for (let k = 1; k <= 5; k++) {
      await publish(1, k);
      await waitFor(() => got.length === k, { message: `message ${k}` });
    }
    expectContiguous(0, 5);
  });

  it("a steady feed (one message at a time) is read in paced pulls, not a pull a message", async () => {
    await open({ paceMs: 25 });
    const N = 600;
    const last = await publish(N); // one after the other, each acknowledged before the next
    await waitFor(() => got.length === N, { timeoutMs: 20_000, message: `${N} messages` });
    expectContiguous(0, last);
    // a pull (and a status) a message would be ≥ N; paced, a drain carries many
    expect(lane!.pulls()).toBeLessThan(N / 3);
  });

  it("a busy stream is read in few pulls, every message once and in order", async () => {
    await open({ paceMs: 20 });
    // published concurrently in bursts, as a feed does
    let last = 0;
    for (let b = 0; b < 20; b++) {
      const acks = await Promise.all(
        Array.from({ length: 200 }, (_, i) => js.publish(`paced.s${i % 7}`, String(b * 200 + i))),
      );
      last = Math.max(last, ...acks.map((a) => a.seq));
    }
    await waitFor(() => got.length === 4000, { timeoutMs: 20_000, message: "4 000 messages" });
    expectContiguous(0, last);
    expect(lane!.pulls()).toBeLessThan(4000 / 4);
  });

  it("its consumer deleted under it: recreated from the last message delivered, nothing lost or doubled", async () => {
    await open();
    await publish(50);
    await waitFor(() => got.length === 50);
    const first = lane!.consumer();
    await jsm.consumers.delete(STREAM, first);
    await waitFor(() => lane!.consumer() !== "" && lane!.consumer() !== first, {
      message: "a new consumer",
    });
    const last = await publish(50, 50);
    await waitFor(() => got.length === 100, { message: "100 messages" });
    expectContiguous(0, last);
  });

  it("a server restart (the memory consumer gone): the lane recovers by itself", async () => {
    await open({ waitMs: 1_000, stallMs: 2_000 });
    await publish(20);
    await waitFor(() => got.length === 20);
    await server.restart();
    await waitFor(async () => (await jsm.streams.info(STREAM)).state.messages === 20, {
      timeoutMs: 20_000,
      message: "the stream back",
    });
    // retried under one message id until acknowledged: stored once however many attempts
    await waitFor(
      async () => {
        await js.publish("paced.after", "after", { msgID: "after-restart" });
        return true;
      },
      { timeoutMs: 20_000, message: "a publish after the restart" },
    );
    const last = await publish(30, 2000);
    await waitFor(() => got.at(-1)?.seq === last, {
      timeoutMs: 20_000,
      message: "every message after the restart",
    });
    expect(got).toHaveLength(51);
    expectContiguous(0, last);
  });

  it("its connection closed: the lane stops (no pull sent after, nothing thrown)", async () => {
    await open({ paceMs: 10, waitMs: 1_000, stallMs: 1_000 });
    await publish(30);
    await waitFor(() => got.length === 30);
    await nc.close();
    await waitFor(() => lane!.closed(), { message: "the lane closed with its connection" });
    const after = lane!.pulls();
    // past the waiting pull's deadline, when a lane that missed the close would reset and pull
    await new Promise((r) => setTimeout(r, 2_500));
    expect(lane!.pulls()).toBe(after);
  });
});

describe("paced lane: the delivery reply subject", () => {
  it("reads both forms of $JS.ACK", () => {
    expect(parseReply("$JS.ACK.QUOTES.c1.1.42.7.1700000000000000000.3")).toEqual({
      consumer: "c1",
      sseq: 42,
      cseq: 7,
      ts: 1700000000000000000,
      pending: 3,
    });
    expect(parseReply("$JS.ACK.dom.acchash.QUOTES.c1.1.42.7.1700000000000000000.3.rnd")).toEqual({
      consumer: "c1",
      sseq: 42,
      cseq: 7,
      ts: 1700000000000000000,
      pending: 3,
    });
  });
});
