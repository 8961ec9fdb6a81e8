/**
 * Work that must not hold the event loop: items are applied in order, in the loop's check phase
 * (`setImmediate`), at most `sliceMs` of them a turn, so whatever the socket delivers meanwhile (a
 * check) is handled between slices. Past `maxWaiting` items the queue applies everything at once,
 * in the caller's turn: a process too starved to keep up then reads its socket no faster than it
 * folds (backpressure), and memory stays bounded.
 */
export interface SliceQueue<T> {
  push(item: T): void;
  /** Forgets what is waiting (a stop). */
  clear(): void;
  /** Items waiting, or a slice scheduled: a later item must queue behind them to keep the order. */
  readonly active: boolean;
  readonly waiting: number;
}

export function createSliceQueue<T>(o: {
  /** Applies one item (it should not throw: a throw is passed on, the rest stay queued). */
  apply: (item: T) => void;
  sliceMs: number;
  maxWaiting: number;
  /** Injected for tests; the check phase by default. */
  schedule?: (f: () => void) => void;
  now?: () => number;
}): SliceQueue<T> {
  const schedule = o.schedule ?? ((f: () => void) => void setImmediate(f));
  const now = o.now ?? (() => performance.now());
  let items: (T | undefined)[] = [];
  let head = 0;
  let scheduled = false;

  const next = (): T => {
    const it = items[head] as T;
    items[head++] = undefined;
    return it;
  };

  function slice(): void {
    const t0 = now();
    let n = 0;
    try {
      while (head < items.length) {
        o.apply(next());
        if ((++n & 3) === 0 && now() - t0 >= o.sliceMs) break;
      }
    } finally {
      // an apply that threw lost its item only: the rest keep their turn
      if (head < items.length) schedule(slice);
      else {
        items = [];
        head = 0;
        scheduled = false;
      }
    }
  }

  return {
    push(item) {
      items.push(item);
      if (items.length - head >= o.maxWaiting) {
        while (head < items.length) o.apply(next());
        return;
      }
      if (!scheduled) {
        scheduled = true;
        schedule(slice);
      }
    },
    clear() {
      items = [];
      head = 0;
    },
    get active() {
      return scheduled || head < items.length;
    },
    get waiting() {
      return items.length - head;
    },
  };
}
