/**
 * The rebuild's snapshot writer: a background write that fails while the fold goes on is never an
 * unhandled rejection; it is told at once (the rebuild stops) and is the error drain() rejects with.
 */
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { createRebuildWriter } from "../../src/engine/rebuild-writer.js";
import { SnapshotError, createState, foldTheRebuildWay, openSnapshot } from "../../src/state/index.js";

const dir = mkdtempSync(join(tmpdir(), "riskengine-unit-rebuild-writer-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("rebuild writer", () => {
  it("given a background write that fails before the next is scheduled, when the fold goes on, then no rejection is left unhandled and drain() rejects with the write's error", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on("unhandledRejection", onUnhandled);
    try {
      const snapshot = openSnapshot(join(dir, "failing.db"));
      const state = createState();
      foldTheRebuildWay(state);
      const failures: unknown[] = [];
      const writer = createRebuildWriter({ snapshot, state, every: 2, onFailure: (e) => failures.push(e) });
      await writer.drain(); // the first write (the unfinished mark) went through
      snapshot.close(); // every write from now on fails
      writer.folded();
      writer.folded(); // a write is due: it fails
      const deadline = Date.now() + 5000;
      while (failures.length === 0 && Date.now() < deadline) await delay(10);
      expect(failures).toHaveLength(1);
      writer.folded();
      writer.folded(); // the next one is not even attempted
      // a few turns of the event loop: an unhandled rejection would be reported by now
      for (let i = 0; i < 5; i++) await delay(10);
      expect(unhandled).toEqual([]);
      await expect(writer.drain()).rejects.toBeInstanceOf(SnapshotError);
      expect(failures).toHaveLength(1);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});
