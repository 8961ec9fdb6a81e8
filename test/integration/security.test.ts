/**
 * Security (QUALITY.md "Reliability"): nats-server runs deploy/nats-secure.conf, one user per
 * role; real clients with each role's credentials prove what the server refuses. The OMS cannot
 * publish resume, halt, envelopes or fills, nor touch streams other than consuming OMS_INTENTS;
 * market data cannot publish fills; the operator's resume and the broker's fill go through.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startNatsServer, type NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { createRiskClient, type OrderRequest } from "../../src/client/index.js";
import { connectTest, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

const ROLES = ["engine", "oms", "operator", "marketdata", "broker"] as const;
type Role = (typeof ROLES)[number];
const passVar = (role: Role): string => `MTS_NATS_${role.toUpperCase()}_PASS`;
/** Fresh per run; nats-server reads them from its environment ($MTS_NATS_<ROLE>_PASS). */
const PASS = Object.fromEntries(
  ROLES.map((r) => [r, `${r}-${randomBytes(12).toString("base64url")}`]),
) as Record<Role, string>;

const FUND = "sec";
/** Each role's inbox prefix (deploy/nats-secure.conf: subscribe under its own prefix only). */
const inbox = (role: Role): string => `_INBOX_${role}`;
const SHORT = { timeout: 1000 };

/**
 * The deploy config plus a `probe` user that anonymous connections map to (no_auth_user), allowed
 * only to ask $JS.API.INFO: startNatsServer's readiness probe connects without credentials
 * (src/bus/nats-server.ts takes none). Every role keeps its deploy permissions unchanged.
 */
async function testConfig(dir: string): Promise<string> {
  const text = await readFile(resolve("deploy/nats-secure.conf"), "utf8");
  const anchor = /^(\s*)users: \[\n/m;
  if (!anchor.test(text)) throw new Error("deploy/nats-secure.conf: no `users: [` line to extend");
  const probe =
    '{ user: probe, password: "probe-only", permissions: { publish: ["$JS.API.INFO"], ' +
    'subscribe: ["_INBOX.>"] } }\n';
  const file = join(dir, "nats-secure.conf");
  await writeFile(
    file,
    `no_auth_user: probe\n${text.replace(anchor, (m, indent: string) => `${m}${indent}  ${probe}`)}`,
  );
  return file;
}

/** Permission errors the server sent to a connection (-ERR 'Permissions Violation ...'). */
function collectErrors(nc: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === "error") seen.push(String(s.error.message));
  })();
  return seen;
}

describe("security: per-role users and subject permissions (deploy/nats-secure.conf)", () => {
  let dir: string;
  let server: NatsServerHandle;
  let engine: Engine;
  let admin: JetStreamManager; // the engine's own connection: full rights, to inspect streams
  const nc = {} as Record<Exclude<Role, "engine">, NatsConnection>;
  const errors = {} as Record<Exclude<Role, "engine">, string[]>;

  const lastSeq = async (stream: string): Promise<number> =>
    (await admin.streams.info(stream)).state.last_seq;
  const fund = () => engine.observe.fund(FUND)!;
  const halt = (severity: string, by: string) => ({ fund_id: FUND, severity, reason: "test", at: NOW, by });
  const resume = (operator: string) => ({ fund_id: FUND, operator, reason: "reviewed", at: NOW });
  const fill = (id: string) => ({
    fill_id: id,
    order_id: `ext-${id}`,
    fund_id: FUND,
    broker: "paper",
    symbol: "AAPL",
    side: "BUY",
    quantity: "100",
    price: "100",
    fees: "0",
    timestamp: NOW,
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mts-nats-secure-"));
    for (const r of ROLES) process.env[passVar(r)] = PASS[r];
    // -m -1: monitoring on a random port (the file says 8222); the store is ./var/nats-secure in dir.
    server = await startNatsServer({
      port: 0,
      configFile: await testConfig(dir),
      cwd: dir,
      args: ["-m", "-1"],
    });
    engine = await startTestEngine(server.url, {
      flags: {
        "nats.user": "engine",
        "nats.pass": PASS.engine,
        "nats.inbox_prefix": inbox("engine"),
        "state.dir": join(dir, "state"),
      },
    });
    admin = await jetstreamManager(engine.nc);
    for (const r of ["oms", "operator", "marketdata", "broker"] as const) {
      nc[r] = await connectTest(server.url, {
        user: r,
        pass: PASS[r],
        name: `security-${r}`,
        inboxPrefix: inbox(r),
      });
      errors[r] = collectErrors(nc[r]);
    }
    const e = await new Bus(nc.operator).envelope(envelope(FUND));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
  });

  afterAll(async () => {
    for (const c of Object.values(nc)) await c.close().catch(() => undefined);
    await engine?.close();
    await server?.stop();
    for (const r of ROLES) delete process.env[passVar(r)];
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses a connection without the right password", async () => {
    await expect(
      connect({
        servers: server.url,
        user: "oms",
        pass: "not-the-password",
        reconnect: false,
        timeout: 2000,
      }),
    ).rejects.toThrow(/authorization/i);
    await expect(
      connect({ servers: server.url, user: "oms", pass: PASS.operator, reconnect: false, timeout: 2000 }),
    ).rejects.toThrow(/authorization/i);
  });

  it("the OMS can request a check, the status and an envelope", async () => {
    const oms = new Bus(nc.oms);
    const d = await oms.check(order({ fund_id: FUND }));
    expect(d.approved).toBe(true);
    const partitioned = await oms.check(order({ fund_id: FUND }), Subjects.checkFund(FUND));
    expect(partitioned.approved).toBe(true);
    const status = (await nc.oms.request(Subjects.status, "{}", SHORT)).json<Record<string, unknown>>();
    expect(status).toHaveProperty("ready", true);
    const env = (await nc.oms.request(Subjects.envelopeGet, JSON.stringify({ fund_id: FUND }), SHORT)).json<
      Record<string, unknown>
    >();
    expect(env).toMatchObject({ fund_id: FUND, version: 1 });
    // and publish its own order events
    const seq = await oms.orderEvent("accepted", FUND, String(order()["order_id"]));
    expect(seq).toBeGreaterThan(0);
  });

  it("the OMS cannot resume, halt, change an envelope or publish a fill; the engine state is unchanged", async () => {
    const op = new Bus(nc.operator);
    const h = await op.control(Subjects.halt(FUND), halt("MANUAL", "ops"));
    await waitFor(() => applied(engine, "RISK_CONTROL", h));
    expect(Object.keys(fund().halts)).toEqual(["MANUAL"]);

    const before = {
      control: await lastSeq("RISK_CONTROL"),
      envelopes: await lastSeq("RISK_ENVELOPES"),
      fills: await lastSeq("FILLS"),
    };
    const js = jetstream(nc.oms);
    const denied = /permission/i;
    await expect(js.publish(Subjects.resume(FUND), JSON.stringify(resume("oms")), SHORT)).rejects.toThrow(
      denied,
    );
    await expect(
      js.publish(Subjects.halt(FUND), JSON.stringify(halt("KILL_SWITCH", "oms")), SHORT),
    ).rejects.toThrow(denied);
    await expect(
      js.publish(
        Subjects.envelopeUpdated(FUND),
        JSON.stringify(envelope(FUND, { version: 2, capital: "999999999" })),
        SHORT,
      ),
    ).rejects.toThrow(denied);
    await expect(
      js.publish(Subjects.fill(FUND, "AAPL"), JSON.stringify(fill("oms-fill")), {
        ...SHORT,
        msgID: "oms-fill",
      }),
    ).rejects.toThrow(denied);
    // a plain core publish is dropped by the server just the same (and reported asynchronously)
    nc.oms.publish(Subjects.resume(FUND), JSON.stringify(resume("oms")));
    await nc.oms.flush();

    // the server said why, on the connection's status stream
    for (const s of [
      Subjects.resume(FUND),
      Subjects.halt(FUND),
      Subjects.envelopeUpdated(FUND),
      Subjects.fill(FUND, "AAPL"),
    ]) {
      await waitFor(
        () => errors.oms.some((m) => /permissions violation for publish/i.test(m) && m.includes(s)),
        {
          message: `permission error for ${s}`,
        },
      );
    }
    // nothing reached a stream ...
    expect({
      control: await lastSeq("RISK_CONTROL"),
      envelopes: await lastSeq("RISK_ENVELOPES"),
      fills: await lastSeq("FILLS"),
    }).toEqual(before);
    // ... so the engine still has the fund halted, on envelope v1, with no position
    expect(Object.keys(fund().halts)).toEqual(["MANUAL"]);
    expect(fund().envelope_version).toBe(1);
    expect(fund().books["AAPL"]?.qty ?? "0").toBe("0");
    const d = await new Bus(nc.oms).check(order({ fund_id: FUND }));
    expect(d).toMatchObject({ approved: false, rejection_code: "FUND_HALTED" });
  });

  it("the operator's resume lifts the halt", async () => {
    expect(Object.keys(fund().halts)).toHaveLength(1);
    const r = await new Bus(nc.operator).control(Subjects.resume(FUND), resume("ops"));
    await waitFor(() => applied(engine, "RISK_CONTROL", r));
    expect(Object.keys(fund().halts)).toHaveLength(0);
    expect((await new Bus(nc.oms).check(order({ fund_id: FUND }))).approved).toBe(true);
  });

  it("market data cannot publish a fill; the broker can", async () => {
    const before = await lastSeq("FILLS");
    await expect(
      jetstream(nc.marketdata).publish(Subjects.fill(FUND, "AAPL"), JSON.stringify(fill("md-fill")), {
        ...SHORT,
        msgID: "md-fill",
      }),
    ).rejects.toThrow(/permission/i);
    expect(await lastSeq("FILLS")).toBe(before);

    // its own subjects go through
    const q = await new Bus(nc.marketdata).quote("AAPL", "99.9", "100.1");
    await waitFor(() => applied(engine, "QUOTES", q));

    const seq = await jetstream(nc.broker).publish(
      Subjects.fill(FUND, "AAPL"),
      JSON.stringify(fill("broker-fill")),
      {
        ...SHORT,
        msgID: "broker-fill",
      },
    );
    await waitFor(() => applied(engine, "FILLS", seq.seq));
    expect(seq.seq).toBe(before + 1);
    expect(fund().books["AAPL"]?.qty).toBe("100");
  });

  it("the broker and market data answer the engine's requests, and only those", async () => {
    const positions = nc.broker.subscribe(Subjects.brokerPositions("secbroker"), {
      callback: (_err, m) => void m.respond(JSON.stringify({ positions: [] })),
    });
    const quotes = nc.marketdata.subscribe(Subjects.mdQuote("SECQ"), {
      callback: (_err, m) =>
        void m.respond(JSON.stringify({ symbol: "SECQ", bid: "1", ask: "2", timestamp: NOW })),
    });
    await nc.broker.flush();
    await nc.marketdata.flush();
    const p = await engine.nc.request(
      Subjects.brokerPositions("secbroker"),
      JSON.stringify({ fund_id: FUND }),
      SHORT,
    );
    expect(p.json()).toEqual({ positions: [] });
    const m = await engine.nc.request(Subjects.mdQuote("SECQ"), "{}", SHORT);
    expect(m.json()).toMatchObject({ symbol: "SECQ" });
    positions.unsubscribe();
    quotes.unsubscribe();
    // allow_responses is for replies only: market data still cannot publish a fill
    nc.marketdata.publish(Subjects.fill(FUND, "AAPL"), "{}");
    await waitFor(() => errors.marketdata.some((e) => e.includes(Subjects.fill(FUND, "AAPL"))));
  });

  it("the OMS cannot delete, purge or create streams, nor read streams other than OMS_INTENTS", async () => {
    const jsm = await jetstreamManager(nc.oms, SHORT);
    const fillsBefore = await admin.streams.info("FILLS");
    await expect(jsm.streams.delete("FILLS")).rejects.toThrow(/permission/i);
    await expect(jsm.streams.purge("RISK_CONTROL")).rejects.toThrow(/permission/i);
    await expect(jsm.streams.add({ name: "OMS_OWN", subjects: ["oms.own.>"] })).rejects.toThrow(
      /permission/i,
    );
    await expect(jsm.streams.info("FILLS")).rejects.toThrow(/permission/i);
    await expect(jetstream(nc.oms).consumers.get("RISK_CONTROL")).rejects.toThrow(/permission/i);
    const fillsAfter = await admin.streams.info("FILLS");
    expect(fillsAfter.state).toEqual(fillsBefore.state);
    expect((await admin.streams.info("RISK_CONTROL")).state.messages).toBeGreaterThan(0);
    // the operator reads RISK_* but cannot delete them either
    const opJsm = await jetstreamManager(nc.operator, SHORT);
    expect((await opJsm.streams.info("RISK_CONTROL")).state.messages).toBeGreaterThan(0);
    const last = await opJsm.streams.getMessage("RISK_CONTROL", { last_by_subj: Subjects.resume(FUND) });
    expect(last?.json()).toMatchObject({ fund_id: FUND, operator: "ops" });
    await expect(opJsm.streams.delete("RISK_CONTROL")).rejects.toThrow(/permission/i);
  });

  it("the OMS consumes OMS_INTENTS with an ordered consumer and with a durable pull consumer", async () => {
    const subject = Subjects.cancelAll(FUND);
    const ack = await engine.js.publish(subject, JSON.stringify({ fund_id: FUND, reason: "test", at: NOW }));

    const js = jetstream(nc.oms, SHORT);
    const ordered = await js.consumers.get("OMS_INTENTS", { filter_subjects: subject });
    const m1 = await ordered.next({ expires: 2000 });
    expect(m1?.seq).toBe(ack.seq);
    expect(m1?.json()).toMatchObject({ fund_id: FUND, reason: "test" });

    const jsm = await jetstreamManager(nc.oms, SHORT);
    await jsm.consumers.add("OMS_INTENTS", {
      durable_name: "oms-sec",
      filter_subject: subject,
      ack_policy: AckPolicy.Explicit,
    });
    const durable = await js.consumers.get("OMS_INTENTS", "oms-sec");
    const m2 = await durable.next({ expires: 2000 });
    expect(m2?.seq).toBe(ack.seq);
    expect(await m2!.ackAck(SHORT)).toBe(true);
    await waitFor(async () => (await durable.info()).num_ack_pending === 0);
    await jsm.consumers.delete("OMS_INTENTS", "oms-sec");
  });
  it("the OMS, with its inbox prefix, reads decisions, halts, alerts and stops, live and from the streams", async () => {
    const F = "secread";
    const e = await new Bus(nc.operator).envelope(envelope(F));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
    // live, core subscriptions on the four subject families
    const live: string[] = [];
    const subs = ["decision", "halt", "alert", "stop"].map((k) =>
      nc.oms.subscribe(`mts.v1.risk.${k}.>`, { callback: (_e, m) => void live.push(m.subject) }),
    );
    await nc.oms.flush();
    // through the streams: the client library's watches (ordered consumers) and filtered consumers
    const risk = createRiskClient(nc.oms, { timeoutMs: 2000 });
    const decisions = risk.watchDecisions(F);
    const alerts = risk.watchAlerts(F);
    await decisions.ready;
    await alerts.ready;
    const js = jetstream(nc.oms, SHORT);
    const halts = await js.consumers.get("RISK_CONTROL", { filter_subjects: Subjects.halt(F) });
    const stops = await js.consumers.get("RISK_CONTROL", { filter_subjects: Subjects.stop("triggered", F) });

    const o = order({ fund_id: F });
    const d = await risk.check(o as unknown as OrderRequest); // the reply arrives under _INBOX_oms
    expect(d.approved).toBe(true);
    const h = await new Bus(nc.operator).control(Subjects.halt(F), { ...halt("MANUAL", "ops"), fund_id: F });
    const alert = { kind: "test", fund_id: F, at: NOW, message: "secread" };
    await engine.js.publish(Subjects.alert("test", F), JSON.stringify(alert));
    await engine.js.publish(Subjects.stop("triggered", F), JSON.stringify({ fund_id: F, at: NOW }));

    const it1 = decisions[Symbol.asyncIterator]();
    const rec = (await it1.next()).value as Record<string, unknown>;
    expect(JSON.stringify(rec)).toContain(String(o["order_id"]));
    const it2 = alerts[Symbol.asyncIterator]();
    expect((await it2.next()).value).toMatchObject({ fund_id: F, message: "secread" });
    const hm = await halts.next({ expires: 2000 });
    expect(hm?.seq).toBe(h);
    expect(hm?.json()).toMatchObject({ fund_id: F, severity: "MANUAL" });
    const sm = await stops.next({ expires: 2000 });
    expect(sm?.subject).toBe(Subjects.stop("triggered", F));
    await waitFor(
      () =>
        [
          Subjects.decision(F),
          Subjects.halt(F),
          Subjects.alert("test", F),
          Subjects.stop("triggered", F),
        ].every((x) => live.includes(x)),
      { message: `live messages, got ${live.join(",")}` },
    );
    await it1.return?.(undefined); // runs the watch's own stop()
    await it2.return?.(undefined);
    for (const x of subs) x.unsubscribe();
    expect(errors.oms.filter((m) => /subscription/i.test(m))).toEqual([]);
    await new Bus(nc.operator).control(Subjects.resume(F), { ...resume("ops"), fund_id: F });
  });

  it("the OMS cannot read another role's inbox, the shared _INBOX, resumes or baselines", async () => {
    const watcher = await connectTest(server.url, { user: "oms", pass: PASS.oms, inboxPrefix: inbox("oms") });
    const seen = collectErrors(watcher);
    const got: string[] = [];
    for (const subject of [
      `${inbox("engine")}.>`,
      `${inbox("operator")}.>`,
      "_INBOX.>",
      "mts.v1.risk.resume.>",
    ]) {
      watcher.subscribe(subject, { callback: (err, m) => void (err ? undefined : got.push(m.subject)) });
    }
    await watcher.flush();
    for (const subject of [
      `${inbox("engine")}.>`,
      `${inbox("operator")}.>`,
      "_INBOX.>",
      "mts.v1.risk.resume.>",
    ]) {
      await waitFor(
        () => seen.some((m) => /permissions violation for subscription/i.test(m) && m.includes(subject)),
        { message: `subscription refused for ${subject}` },
      );
    }
    // replies to other clients do not leak: the operator's check reply stays under its own prefix
    expect((await new Bus(nc.operator).check(order({ fund_id: FUND }))).approved).toBe(true);
    // a RISK_CONTROL consumer on resumes (or unfiltered) is refused
    const js = jetstream(watcher, SHORT);
    await expect(
      js.consumers.get("RISK_CONTROL", { filter_subjects: Subjects.resume(FUND) }),
    ).rejects.toThrow(/permission/i);
    await expect(js.consumers.get("RISK_CONTROL")).rejects.toThrow(/permission/i);
    await watcher.flush();
    expect(got).toEqual([]);
    await watcher.close();

    // an OMS on the default _INBOX prefix gets no reply at all: the server refuses its inbox
    const plain = await connectTest(server.url, { user: "oms", pass: PASS.oms });
    const plainErrors = collectErrors(plain);
    await expect(
      plain.request(Subjects.check, JSON.stringify(order({ fund_id: FUND })), SHORT),
    ).rejects.toThrow();
    await waitFor(() =>
      plainErrors.some((m) => /permissions violation for subscription/i.test(m) && m.includes("_INBOX.")),
    );
    await plain.close();
  });
});
