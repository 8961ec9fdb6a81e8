/** UTC period starts: day (midnight), ISO week (Monday midnight), month (the 1st, midnight). */
import type { PnlPeriod } from "../contract/records.js";

const DAY = 86_400_000;

export function periodStart(now: number, period: PnlPeriod): number {
  const d = new Date(now);
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  if (period === "day") return midnight;
  if (period === "week") return midnight - ((d.getUTCDay() + 6) % 7) * DAY; // Monday = 0
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** The starts of the day, ISO week and month containing `now`; recomputed only when the day changes. */
let cachedDay = NaN;
let cached: Record<PnlPeriod, number> = { day: 0, week: 0, month: 0 };
export function periodStarts(now: number): Readonly<Record<PnlPeriod, number>> {
  if (!(now >= cachedDay && now < cachedDay + DAY)) {
    cached = {
      day: periodStart(now, "day"),
      week: periodStart(now, "week"),
      month: periodStart(now, "month"),
    };
    cachedDay = cached.day;
  }
  return cached;
}

export const PERIODS: readonly PnlPeriod[] = ["day", "week", "month"];
