/** The CLI's input files: a byte-order mark (what Windows editors write) is not part of the JSON. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readDataFile } from "../../src/cli/io.js";

describe("readDataFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "mts-data-file-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const ext of ["json", "yaml"]) {
    it(`reads a .${ext} file that starts with a byte-order mark`, () => {
      const file = join(dir, `order.${ext}`);
      writeFileSync(
        file,
        `\uFEFF${ext === "json" ? '{"fund_id": "alpha", "quantity": "10"}' : "fund_id: alpha\nquantity: '10'\n"}`,
      );
      expect(readDataFile(file)).toEqual({ fund_id: "alpha", quantity: "10" });
    });
  }
});
