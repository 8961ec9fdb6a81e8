/**
 * Red team, several engines (passing guard): a check with no idempotency key is routed to no owner
 * (the forwarder routes by the key's fund), so whichever engine the queue group picks decides it.
 * CONTRACT.md "Gates and rejection codes": "Every decision is journaled." Its SCHEMA_INVALID
 * rejection must be journaled whichever engine answered (it goes on the no-fund subject `_`, which
 * is not conditional, so a non-owner can write it).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { Subjects } from "../../src/contract/subjects.js";
import { readDecisions } from "./support.js";
import { SeveralEngines, raceOrder } from "./several-support.js";

describe("red team: several engines, checks without an idempotency key", () => {
  let h: SeveralEngines;
  beforeEach(async () => {
    h = await SeveralEngines.start();
  });
  afterEach(async () => {
    await h?.stop();
  });

  it("every SCHEMA_INVALID answer is journaled, whichever engine answered", async () => {
    await h.startEngines(2);
    const funds = Array.from({ length: 8 }, (_, i) => `nk${i}`);
    for (const f of funds) await h.publishEnvelope(f);
    const sent: string[] = [];
    const answers = await Promise.all(
      funds.flatMap((f) =>
        Array.from({ length: 10 }, async (_, i) => {
          const o = raceOrder(f, i);
          delete o["idempotency_key"];
          sent.push(String(o["order_id"]));
          return h.request(o, Subjects.check, 10_000);
        }),
      ),
    );
    expect(answers.every((d) => d?.rejection_code === "SCHEMA_INVALID")).toBe(true);
    // a valid order afterwards on every fund: its record comes after everything above on the subject
    for (const f of funds) {
      const d = await h.request(raceOrder(f, 100), Subjects.check, 10_000);
      expect(d?.approved).toBe(true);
    }
    const records = await readDecisions(jetstream(h.nc), h.jsm);
    const journaled = new Set(records.map((r) => r.decision.order_id));
    const missing = sent.filter((id) => !journaled.has(id));
    expect(missing, `${missing.length} of ${sent.length} answered rejections not journaled`).toEqual([]);
  }, 90_000);
});
