/**
 * The operations HTTP listener (CONTRACT.md "Operations"), node:http only:
 *   GET /metrics         Prometheus text format (the engine's registry)
 *   GET /healthz         200 while the process serves
 *   GET /readyz          200 when ready, else 503 with `{ ready: false, reason, ... }`
 *   GET /                the operator dashboard (one static page, polling /api/dashboard)
 *   GET /api/dashboard   the dashboard's data (JSON)
 * Read-only: nothing here changes the engine. Binds to loopback by default (config http.host).
 *
 * Port clash: several engines on one machine with the default configuration all want 9464. With
 * `http.required: false` (default) the engine logs an error and goes on answering checks without
 * HTTP (a supervisor's readiness probe then fails, which is loud); with `true` start-up fails.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Config } from "../config/index.js";
import type { Engine } from "../engine/engine.js";
import type { Logger } from "../obs/log.js";
import type { Clock } from "../time/clock.js";
import { dashboardData } from "./dashboard-data.js";
import { DASHBOARD_HTML } from "./dashboard-page.js";

export class HttpListenError extends Error {
  readonly code = "HTTP_LISTEN_FAILED";
  override readonly name = "HttpListenError";
}

export interface HttpHandle {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface HttpOptions {
  engine: Engine;
  config: Config["http"];
  clock: Clock;
  log: Logger;
  startedAt: number;
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, {
    "Content-Type": type,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  });
  res.end(body);
}
/** The path of an absolute-form request target ("" when it does not parse: a 404). */
function pathOf(target: string): string {
  try {
    return new URL(target).pathname;
  } catch {
    return "";
  }
}

const json = (res: ServerResponse, status: number, body: unknown) =>
  send(res, status, "application/json; charset=utf-8", JSON.stringify(body));

export function createHttpHandler(o: HttpOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { engine } = o;
  engine.metrics.processMetrics();
  return (req, res) => {
    // origin form (`/metrics`) or absolute form (`http://host/metrics`, through a proxy: RFC 9112)
    const target = req.url ?? "/";
    const path = /^https?:\/\//i.test(target) ? pathOf(target) : target.split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return json(res, 405, { error: "method not allowed" });
    }
    switch (path) {
      case "/healthz":
        return json(res, 200, { status: "ok", instance: engine.instance });
      case "/readyz": {
        const r = engine.readiness();
        return json(res, r.ready ? 200 : 503, { instance: engine.instance, ...r });
      }
      case "/metrics":
        engine.metrics.registry
          .metrics()
          .then((text) => send(res, 200, engine.metrics.registry.contentType, text))
          .catch((err: unknown) => {
            o.log.error({ err }, "metrics collection failed");
            json(res, 500, { error: "metrics collection failed" });
          });
        return;
      case "/api/dashboard":
        return json(res, 200, dashboardData(engine, o.clock, o.startedAt));
      case "/":
      case "/index.html":
        return send(res, 200, "text/html; charset=utf-8", DASHBOARD_HTML);
      default:
        return json(res, 404, { error: "not found" });
    }
  };
}

/** Starts the listener; undefined when disabled, or when the port is taken and HTTP is not required. */
export async function startHttp(o: HttpOptions): Promise<HttpHandle | undefined> {
  const cfg = o.config;
  const log = o.log.child({ module: "http" });
  if (!cfg.enabled) {
    log.info("http disabled (http.enabled=false)");
    return undefined;
  }
  const server: Server = createServer(createHttpHandler(o));
  server.keepAliveTimeout = 5000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(cfg.port, cfg.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = `http ${cfg.host}:${cfg.port} unavailable (${code ?? String(err)})`;
    if (cfg.required || code !== "EADDRINUSE") {
      throw new HttpListenError(`${what}; set http.port (RISK_HTTP__PORT) to a free port or 0`, {
        cause: err,
      });
    }
    log.error(
      { host: cfg.host, port: cfg.port },
      `${what}: serving checks WITHOUT metrics, health or dashboard; set http.port (RISK_HTTP__PORT) to a free port or 0`,
    );
    return undefined;
  }
  server.on("error", (err) => log.error({ err }, "http server error"));
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  log.info(
    { url, port: addr.port },
    `http listening on ${url} (/metrics, /healthz, /readyz, dashboard at /)`,
  );
  return {
    url,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
