import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { catalogJson } from "../../src/contract/catalog.js";
import { CONSUMED_STREAMS, OWNED_STREAMS, streamCatalog } from "../../src/contract/subjects.js";

describe("subjects/catalog.json", () => {
  it("given the code's catalog, when compared with the committed file, then they are the same (npm run catalog)", () => {
    expect(readFileSync(new URL("../../subjects/catalog.json", import.meta.url), "utf8")).toBe(catalogJson());
  });
  it("given the stream catalog, then no two streams share a subject filter and every consumed stream exists", () => {
    const specs = streamCatalog();
    const all = specs.flatMap((s) => s.subjects);
    expect(new Set(all).size).toBe(all.length);
    for (const s of [...CONSUMED_STREAMS, ...OWNED_STREAMS]) expect(specs.map((x) => x.name)).toContain(s);
  });
});
