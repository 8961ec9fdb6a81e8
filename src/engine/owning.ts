/**
 * Ownership wiring: how the engine's composition root uses the several-engines parts
 * (`./several.ts`, `src/ownership/`). When it may join the queue group (the ownership view read),
 * when it starts answering after catching up (owning what it should own, bounded), and how many
 * funds it owns (metrics).
 */
import { setTimeout as delay } from "node:timers/promises";
import type { Ownership } from "../ownership/manager.js";
import type { Registry } from "../ownership/registry.js";

export interface Waiting {
  /** Monotonic milliseconds (default `performance.now`). */
  now?: () => number;
  /** Waits a little (default: a timer). */
  pause?: (ms: number) => Promise<unknown>;
}

/**
 * Waits until the registry has read the ownership view, at most `boundMs`: an engine that cannot yet
 * tell who owns a fund would only hold the checks it receives. Resolves whether it was read.
 */
export async function waitSynced(
  registry: Pick<Registry, "synced">,
  o: Waiting & { boundMs: number },
): Promise<boolean> {
  const now = o.now ?? (() => performance.now());
  const pause = o.pause ?? ((ms: number) => delay(ms));
  const by = now() + o.boundMs;
  while (!registry.synced() && now() < by) await pause(5);
  return registry.synced();
}

/**
 * Waits until this engine owns what the live engines' hash gives it, at most `boundMs` (a lease may
 * be held by an engine not yet judged dead) or until closing. Resolves whether it settled.
 */
export async function waitSettled(
  ownership: Pick<Ownership, "settled" | "changed">,
  o: Waiting & { boundMs: number; closing: () => boolean },
): Promise<boolean> {
  const now = o.now ?? (() => performance.now());
  const pause = o.pause ?? ((ms: number) => delay(ms));
  const until = now() + o.boundMs;
  while (!ownership.settled() && !o.closing() && now() < until) {
    await Promise.race([ownership.changed(), pause(50)]);
  }
  return ownership.settled();
}

/** Funds with an envelope whose partition this engine holds (several engines: its share). */
export function ownedFunds(
  funds: Iterable<{ id: string; envelope?: unknown }>,
  active: (fund: string) => boolean,
): number {
  let n = 0;
  for (const f of funds) if (f.envelope && active(f.id)) n++;
  return n;
}
