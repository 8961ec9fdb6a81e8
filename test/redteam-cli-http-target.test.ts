/**
 * Red team, HTTP: the operations listener routes on `req.url` split at `?`, so a request in
 * absolute-form (`GET http://host:port/metrics HTTP/1.1`, which RFC 9112 §3.2.2 says a server MUST
 * accept, and which a client sends through an HTTP proxy) gets 404 for /metrics, /healthz and
 * /readyz. Correct: the same answer as the origin-form request. Also checked: odd targets and
 * methods never crash the engine (it still answers /healthz afterwards).
 */
import { connect as tcpConnect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsServerHandle } from "../src/bus/nats-server.js";
import { DEFAULTS } from "../src/config/index.js";
import type { Engine } from "../src/engine/index.js";
import { type HttpHandle, startHttp } from "../src/http/server.js";
import { silentLogger } from "../src/obs/log.js";
import { systemClock } from "../src/time/clock.js";
import { startTestEngine } from "./support/engine.js";
import { startTestNats } from "./support/nats.js";

/** One raw HTTP/1.1 exchange; resolves with the status line's code (0: no answer in 5 s). */
function raw(port: number, request: string): Promise<number> {
  return new Promise((done) => {
    let data = "";
    const s = tcpConnect(port, "127.0.0.1", () => s.end(request));
    const timer = setTimeout(() => {
      s.destroy();
      done(0);
    }, 5000);
    s.on("data", (c: Buffer) => (data += c.toString("latin1")));
    s.on("error", () => undefined);
    s.on("close", () => {
      clearTimeout(timer);
      done(Number(/^HTTP\/1\.[01] (\d{3})/.exec(data)?.[1] ?? 0));
    });
  });
}

describe("operations HTTP: request targets", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let web: HttpHandle;

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url);
    web = (await startHttp({
      engine,
      config: { ...DEFAULTS.http, port: 0 },
      clock: systemClock,
      log: silentLogger,
      startedAt: systemClock.now(),
    }))!;
  });
  afterAll(async () => {
    await web?.close();
    await engine?.close();
    await server?.stop();
  });

  const req = (target: string, method = "GET") =>
    `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;

  it("odd targets and methods get 4xx answers and the engine keeps serving", async () => {
    expect(await raw(web.port, req("/nope?x=%%"))).toBe(404);
    expect(await raw(web.port, req("*"))).toBe(404);
    expect(await raw(web.port, req("/metrics", "POST"))).toBe(405);
    expect(await raw(web.port, req("/" + "a".repeat(20_000)))).toBeGreaterThanOrEqual(400);
    expect(await raw(web.port, "GARBAGE\r\n\r\n")).toBe(400);
    expect(await raw(web.port, req("/healthz?verbose=1"))).toBe(200);
    expect((await fetch(`${web.url}/healthz`)).status).toBe(200);
  });

  for (const path of ["/healthz", "/metrics", "/readyz", "/api/dashboard"]) {
    it(`absolute-form GET http://host${path} answers as GET ${path}`, async () => {
      const origin = await raw(web.port, req(path));
      expect(origin).toBeGreaterThanOrEqual(200);
      const absolute = await raw(web.port, req(`http://127.0.0.1:${web.port}${path}`));
      expect(absolute).toBe(origin);
    });
  }
});
