/**
 * The hot-path JetStream publisher (src/bus/js-publisher.ts) on a real nats-server: acknowledged
 * writes, duplicates by Nats-Msg-Id, a subject no stream listens on, and a reply that never comes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { JsPublishError, createJsPublisher } from "../../src/bus/js-publisher.js";
import { connectTest, startTestNats } from "../support/nats.js";

let server: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startTestNats();
  nc = await connectTest(server.url);
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "J", subjects: ["j.>"], duplicate_window: 60_000_000_000 });
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

describe("JetStream publisher", () => {
  it("given a stream, when written, then each write is acknowledged in order and a reused id is a duplicate", async () => {
    const p = createJsPublisher(nc, { timeoutMs: 2000 });
    const acks = await Promise.all([1, 2, 3].map((i) => p.publish(`j.${i}`, `{"i":${i}}`, `id-${i}`)));
    expect(acks.map((a) => [a.stream, a.seq, a.duplicate])).toEqual([
      ["J", 1, false],
      ["J", 2, false],
      ["J", 3, false],
    ]);
    expect(await p.publish("j.1", "{}", "id-2")).toMatchObject({ seq: 2, duplicate: true });
    const jsm = await jetstreamManager(nc);
    const m = await jsm.streams.getMessage("J", { seq: 2 });
    expect(m?.header.get("Nats-Msg-Id")).toBe("id-2");
    expect(m?.string()).toBe('{"i":2}');
    expect(p.inFlight()).toBe(0);
    p.close();
  });

  it("given no stream on the subject, when written, then it fails with JOURNAL_NO_STREAM", async () => {
    const p = createJsPublisher(nc, { timeoutMs: 2000 });
    const err = await p.publish("nostream.x", "{}", "a").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JsPublishError);
    expect((err as JsPublishError).code).toBe("JOURNAL_NO_STREAM");
    p.close();
  });

  it("given a listener that never answers, when written, then it fails with JOURNAL_TIMEOUT after the timeout", async () => {
    const sub = nc.subscribe("silent.x", { callback: () => undefined });
    await nc.flush();
    const p = createJsPublisher(nc, { timeoutMs: 200 });
    const err = await p.publish("silent.x", "{}", "b").catch((e: unknown) => e);
    expect((err as JsPublishError).code).toBe("JOURNAL_TIMEOUT");
    expect(p.inFlight()).toBe(0);
    sub.unsubscribe();
    p.close();
  });

  it("given a closed publisher, when written, then it fails with JOURNAL_CLOSED", async () => {
    const p = createJsPublisher(nc, { timeoutMs: 2000 });
    p.close();
    await expect(p.publish("j.9", "{}", "c")).rejects.toMatchObject({ code: "JOURNAL_CLOSED" });
  });
});
