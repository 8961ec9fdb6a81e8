/**
 * `mts-risk check` prints a decision, and exits 0, only for a RiskDecision of the order it sent: a
 * stray responder's approval of another order_id, or an empty protobuf body (a code-less
 * rejection once decoded), is an unexpected reply (exit 2, one line), not an approval or a
 * rejection.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../src/bus/nats-server.js";
import { PROTOBUF_CONTENT_TYPE } from "../src/contract/codec.js";
import { Subjects } from "../src/contract/subjects.js";
import { expectOneLineError, run } from "./support/cli.js";
import { connectTest, startTestNats } from "./support/nats.js";

describe("mts-risk check: a reply that is not the order's decision", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let dir: string;
  let g: string[];
  let answer: (m: Msg) => void = () => undefined;

  beforeAll(async () => {
    vi.stubEnv("RISK_LOG__LEVEL", "warn");
    server = await startTestNats();
    nc = await connectTest(server.url);
    nc.subscribe(Subjects.check, { callback: (_e, m) => answer(m) }); // a stray responder, no engine
    await nc.flush();
    dir = await mkdtemp(join(tmpdir(), "mts-cli-reply-"));
    g = ["--nats-url", server.url, "--state-dir", join(dir, "state"), "--timeout", "2000"];
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    vi.unstubAllEnvs();
  });

  const flags = ["--fund", "alpha", "--symbol", "AAPL", "--side", "buy", "--qty", "1", "--limit-price", "1"];
  const approvalOf = (orderId: string) =>
    JSON.stringify({
      order_id: orderId,
      approved: true,
      rejecting_gate: "",
      rejection_code: "",
      reason: "",
      details: {},
      envelope_id: "alpha@v1",
      decided_at: "2026-11-21T14:30:00.000Z",
    });

  it("an approval of another order_id: exit 2, one line, nothing printed as a decision", async () => {
    answer = (m) => m.respond(new TextEncoder().encode(approvalOf("someone-else")));
    const r = await run(["check", ...flags, ...g]);
    expect(r.out).toBe("");
    expectOneLineError(r, 2);
    expect(r.err).toContain("unexpected reply");
  });

  it("an empty protobuf body: exit 2, not a rejection (exit 1) without a code", async () => {
    const h = natsHeaders();
    h.set("Content-Type", PROTOBUF_CONTENT_TYPE);
    answer = (m) => m.respond(new Uint8Array(0), { headers: h });
    const r = await run(["check", ...flags, "--protobuf", ...g]);
    expect(r.out).toBe("");
    expectOneLineError(r, 2);
  });

  it("the order's own approval is printed, exit 0", async () => {
    answer = (m) => {
      const o = JSON.parse(new TextDecoder().decode(m.data)) as { order_id: string };
      m.respond(new TextEncoder().encode(approvalOf(o.order_id)));
    };
    const r = await run(["check", ...flags, ...g]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ approved: true });
  });
});
