/**
 * Rebuild rate: a fresh nats-server holding a book and `fills` fills, then `mts-risk rebuild` (the
 * operator's command, in its own process) replays every stream into a fresh snapshot.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startNatsServer } from "../bus/nats-server.js";
import { ensureStreams } from "../bus/streams.js";
import { Subjects, streamCatalog } from "../contract/subjects.js";
import { silentLogger } from "../obs/log.js";
import { FUNDS, SYMBOLS, envelope, fill, fundId, instrument, symbolId } from "./book.js";
import { runJson, scriptPath } from "./proc.js";
import { publishAll } from "./publish.js";
import { progress } from "./util.js";

export interface RebuildReport {
  fills: number;
  events: number;
  invalid: number;
  seconds: number;
  events_per_s: number;
  state_digest: string;
  publish_per_s: number;
  bare_read: BareRead & { runs_per_s: number[] };
  /** events_per_s ÷ the bare read's rate (target ≥ 0.6). */
  ratio_to_bare_read: number;
}

export interface BareRead {
  events: number;
  seconds: number;
  per_s: number;
  /** Which script measured it. */
  by: string;
}

/** The bare read + JSON.parse limit (bareread.js), in its own process. */
async function bareRead(url: string): Promise<BareRead> {
  const r = await runJson<Omit<BareRead, "by">>(scriptPath("./bareread.js"), [url]);
  return { events: r.events, seconds: r.seconds, per_s: r.per_s, by: "bareread.js" };
}

export async function runRebuildPhase(
  workDir: string,
  fills: number,
  cpuProfileDir?: string,
): Promise<RebuildReport> {
  const server = await startNatsServer({ storeDir: join(workDir, "nats-rebuild") });
  const nc = await connect({ servers: server.url, name: "bench:rebuild", maxReconnectAttempts: -1 });
  try {
    await ensureStreams(await jetstreamManager(nc), streamCatalog(), 1, silentLogger);
    const js = jetstream(nc);
    await publishAll(js, FUNDS, (f) => ({
      subject: Subjects.envelopeUpdated(fundId(f)),
      data: JSON.stringify(envelope(f)),
    }));
    await publishAll(js, SYMBOLS, (s) => ({
      subject: Subjects.instrument(symbolId(s)),
      data: JSON.stringify(instrument(s)),
    }));
    progress(`rebuild: publishing ${fills} fills`);
    // 50 funds × 1 000 symbols; three rounds of buys to one of sells, so positions stay open.
    const pairs = FUNDS * SYMBOLS;
    const pub = await publishAll(
      js,
      fills,
      (i) => {
        const round = Math.floor(i / pairs);
        const f = i % FUNDS;
        const s = Math.floor(i / FUNDS) % SYMBOLS;
        const body = fill(
          i,
          f,
          s,
          round % 4 === 3 ? "SELL" : "BUY",
          "10",
          (100 + (round % 5) * 0.1).toFixed(1),
        );
        return { subject: Subjects.fill(fundId(f), symbolId(s)), data: JSON.stringify(body) };
      },
      { label: "rebuild fills", window: 4000 },
    );
    progress("rebuild: fills published", { per_s: pub.per_s, seconds: pub.seconds });
    const first = await bareRead(server.url);
    progress("rebuild: bare read + JSON.parse of the streams", { ...first });
    const stateDir = join(workDir, "rebuild-state");
    mkdirSync(stateDir, { recursive: true });
    const env: NodeJS.ProcessEnv = { ...process.env, RISK_LOG__LEVEL: "info" };
    delete env.NATS_URL;
    let lastShown = 0;
    const r = await runJson<
      Omit<RebuildReport, "fills" | "publish_per_s" | "bare_read" | "ratio_to_bare_read">
    >(scriptPath("../../bin/mts-risk.js"), ["rebuild", "--nats-url", server.url, "--state-dir", stateDir], {
      env,
      nodeArgs: cpuProfileDir ? ["--cpu-prof", "--cpu-prof-dir", cpuProfileDir] : [],
      onStderr: (l) => {
        try {
          const rec = JSON.parse(l) as { msg?: string; applied?: number; behind?: number; stream?: string };
          // where the rebuild's time went (folding, then each step of the end)
          if (rec.msg === "rebuilt") progress("rebuild: done", rec);
          if (rec.msg === "rebuilding" && Date.now() - lastShown > 5000) {
            lastShown = Date.now();
            progress("rebuild: replaying", {
              stream: rec.stream,
              applied: rec.applied,
              behind: rec.behind,
            });
          }
        } catch {
          process.stderr.write(`${l}\n`);
        }
      },
    });
    // The physical limit, same server, same stream, same client library, nothing else: before and
    // after the rebuild (the better of the two: the page cache is warm for the second).
    const bare = [first, await bareRead(server.url)];
    const best = bare.reduce((x, y) => (y.per_s > x.per_s ? y : x));
    progress("rebuild: bare read + JSON.parse of the same streams", { per_s: bare.map((x) => x.per_s) });
    return {
      fills,
      bare_read: { ...best, runs_per_s: bare.map((x) => x.per_s) },
      ratio_to_bare_read: +(r.events_per_s / Math.max(1, best.per_s)).toFixed(2),
      events: r.events,
      invalid: r.invalid,
      seconds: +r.seconds.toFixed(2),
      events_per_s: r.events_per_s,
      state_digest: r.state_digest,
      publish_per_s: pub.per_s,
    };
  } finally {
    await nc.close().catch(() => undefined);
    await server.stop();
  }
}
