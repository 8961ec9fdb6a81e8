/**
 * Stream provisioning at start-up, on a real nats-server: every stream's info is asked at once,
 * then each stream is created when missing, updated when the engine owns it and it differs from
 * the catalog, left alone when it matches, and never touched when it exists and another team owns
 * it (a warning names the catalog subjects it lacks). Engines started at once on a fresh server race
 * to create the same streams: every one of them starts (nats-server 2.9 answers the loser of a
 * create race "subjects overlap", not "name in use").
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStreams, streamConfig } from "../../src/bus/streams.js";
import { OWNED_STREAMS, streamCatalog } from "../../src/contract/subjects.js";
import { type Logger, silentLogger } from "../../src/obs/log.js";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { connectTest, startTestNats } from "../support/nats.js";

describe("stream provisioning", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("creates every stream, then finds them unchanged, updates an owned one that differs and leaves a foreign one", async () => {
    const jsm = await jetstreamManager(nc);
    const catalog = streamCatalog();
    const names = catalog.map((s) => s.name);
    const all = (v: string) => Object.fromEntries(names.map((n) => [n, v]));
    // once they exist, the streams other teams own (fills, orders, quotes, refdata) are theirs
    const existing = Object.fromEntries(
      names.map((n) => [n, OWNED_STREAMS.has(n as never) ? "unchanged" : "foreign"]),
    );

    // a foreign stream (another team's) created beforehand without one of the catalog's subjects
    const foreign = catalog.find((s) => !OWNED_STREAMS.has(s.name) && s.subjects.length > 0)!;
    await jsm.streams.add({ ...streamConfig(foreign, 1), subjects: ["elsewhere.>"] });

    const first = await ensureStreams(jsm, catalog, 1, silentLogger);
    expect(first).toEqual({ ...all("created"), [foreign.name]: "foreign" });
    for (const spec of catalog) {
      const info = await jsm.streams.info(spec.name);
      expect(info.config.subjects, spec.name).toEqual(
        spec.name === foreign.name ? ["elsewhere.>"] : spec.subjects,
      );
    }

    expect(await ensureStreams(jsm, catalog, 1, silentLogger)).toEqual(existing);

    // an owned stream whose retention an operator changed is put back to the catalog's
    const owned = catalog.find((s) => OWNED_STREAMS.has(s.name))!;
    const { name: _n, num_replicas: _r, storage: _s, ...cfg } = streamConfig(owned, 1);
    await jsm.streams.update(owned.name, { ...cfg, max_age: 3_600_000_000_000 });
    const warned: unknown[] = [];
    const log = { ...silentLogger, warn: (o: unknown) => void warned.push(o) } as unknown as Logger;
    expect(await ensureStreams(jsm, catalog, 1, log)).toEqual({ ...existing, [owned.name]: "updated" });
    expect((await jsm.streams.info(owned.name)).config.max_age).toBe(owned.max_age_ns);
    expect(warned).toEqual([{ stream: foreign.name, missing: foreign.subjects }]);
  });

  it("engines provisioning at once on an empty server all succeed, whichever wins each create", async () => {
    const catalog = streamCatalog();
    const conns = await Promise.all([1, 2, 3, 4].map(() => connectTest(server.url)));
    try {
      const jsms = await Promise.all(conns.map((c) => jetstreamManager(c)));
      for (let round = 0; round < 40; round++) {
        for (const spec of catalog) await jsms[0]!.streams.delete(spec.name).catch(() => undefined);
        const results = await Promise.all(
          jsms.map((jsm) => ensureStreams(jsm, catalog, 1, silentLogger, { retryForMs: 0 })),
        );
        // each stream created by one engine or another; every engine sees them all
        for (const r of results) expect(Object.keys(r).sort()).toEqual(catalog.map((s) => s.name).sort());
        for (const spec of catalog)
          expect((await jsms[0]!.streams.info(spec.name)).config.subjects, spec.name).toEqual(spec.subjects);
      }
    } finally {
      await Promise.all(conns.map((c) => c.close()));
    }
  });
});
