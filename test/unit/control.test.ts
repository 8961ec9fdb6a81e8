/**
 * RISK_CONTROL halts (issue 9 case 9): a KILL_SWITCH pressed again while in force keeps the halt as
 * first published (sticky) and remembers the latest press; a resume still lifts it; replays are
 * idempotent and the digest does not depend on the presses.
 */
import { describe, expect, it } from "vitest";
import { Subjects } from "../../src/contract/subjects.js";
import { createState, project, stateDigest } from "../../src/state/index.js";

const te = new TextEncoder();
const halt = (at: string) => ({ fund_id: "f", severity: "KILL_SWITCH", reason: `at ${at}`, at, by: "ops" });

function fold(msgs: [string, Record<string, unknown>][]) {
  const s = createState();
  msgs.forEach(([subject, body], i) =>
    expect(project(s, "RISK_CONTROL", subject, te.encode(JSON.stringify(body)), i + 1)).toMatchObject({
      ok: true,
    }),
  );
  return s;
}

describe("KILL_SWITCH presses", () => {
  it("given a second press, then the halt keeps its first record and remembers the press", () => {
    const s = fold([
      [Subjects.halt("f"), halt("2026-12-01T10:00:00.000Z")],
      [Subjects.halt("f"), halt("2026-12-01T11:00:00.000Z")],
    ]);
    const h = s.funds.get("f")!.halts.get("KILL_SWITCH")!;
    expect({ since: h.since, seq: h.seq, lastSeq: h.lastSeq }).toEqual({
      since: "2026-12-01T10:00:00.000Z",
      seq: 1,
      lastSeq: 2,
    });
    // the presses are not state the digest compares
    expect(stateDigest(s)).toBe(stateDigest(fold([[Subjects.halt("f"), halt("2026-12-01T10:00:00.000Z")]])));
  });

  it("given a resume after both presses, then the halt is lifted", () => {
    const s = fold([
      [Subjects.halt("f"), halt("2026-12-01T10:00:00.000Z")],
      [Subjects.halt("f"), halt("2026-12-01T11:00:00.000Z")],
      [Subjects.resume("f"), { fund_id: "f", operator: "op", reason: "ok", at: "2026-12-01T12:00:00.000Z" }],
    ]);
    expect(s.funds.get("f")!.halts.size).toBe(0);
  });

  it("given the same press replayed (same sequence), then nothing changes", () => {
    const s = fold([[Subjects.halt("f"), halt("2026-12-01T10:00:00.000Z")]]);
    const body = te.encode(JSON.stringify(halt("2026-12-01T10:00:00.000Z")));
    expect(project(s, "RISK_CONTROL", Subjects.halt("f"), body, 1)).toMatchObject({ ok: true });
    expect(s.funds.get("f")!.halts.get("KILL_SWITCH")!.lastSeq).toBe(1);
  });
});
