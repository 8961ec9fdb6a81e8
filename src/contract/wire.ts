/** Turn parsed values back into wire JSON: decimals as canonical strings, keys in a stable order. */
import { Dec, canon } from "../decimal/index.js";

export function toWire(v: unknown): unknown {
  if (v instanceof Dec) return canon(v);
  if (Array.isArray(v)) return v.map(toWire);
  if (v instanceof Map) return toWire(Object.fromEntries(v));
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = toWire(x);
    }
    return out;
  }
  return v;
}

/** Canonical JSON: sorted keys, canonical decimals, no undefined. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(toWire(v));
}
