/** Funds to partitions, partitions to engines: even spread, and few moves when an engine joins or leaves. */
import { describe, expect, it } from "vitest";
import { partitionOf, rendezvous } from "../../src/ownership/partition.js";

const P = 64;
const owners = (engines: string[]) => Array.from({ length: P }, (_, p) => rendezvous(engines, p));

describe("partitions and rendezvous hashing", () => {
  it("a fund always maps to the same partition, in range", () => {
    for (const f of ["alpha", "beta", "r1", "_x", "A-1"]) {
      const p = partitionOf(f, P);
      expect(p).toBe(partitionOf(f, P));
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(P);
    }
    const used = new Set(Array.from({ length: 2000 }, (_, i) => partitionOf(`fund-${i}`, P)));
    expect(used.size).toBe(P);
  });

  it("spreads partitions evenly over engines, whatever the order they are listed in", () => {
    const engines = ["vm-101", "vm-202", "vm-303"];
    const a = owners(engines);
    expect(owners([...engines].reverse())).toEqual(a);
    for (const e of engines) {
      const n = a.filter((o) => o === e).length;
      expect(n).toBeGreaterThanOrEqual(12); // 64 / 3 ≈ 21
      expect(n).toBeLessThanOrEqual(32);
    }
  });

  it("an engine joining takes only partitions it wins; one leaving gives away only its own", () => {
    const two = owners(["vm-101", "vm-202"]);
    const three = owners(["vm-101", "vm-202", "vm-303"]);
    for (let p = 0; p < P; p++) if (three[p] !== two[p]) expect(three[p]).toBe("vm-303");
    const moved = three.filter((o, p) => o !== two[p]).length;
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThanOrEqual(32);
    const afterLeave = owners(["vm-101", "vm-303"]);
    for (let p = 0; p < P; p++) if (three[p] !== "vm-202") expect(afterLeave[p]).toBe(three[p]);
  });

  it("no engine: no owner", () => {
    expect(rendezvous([], 3)).toBeUndefined();
  });
});
