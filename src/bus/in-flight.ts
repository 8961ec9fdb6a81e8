/**
 * Publishes in flight: a tracked promise is remembered until it settles, so a caller can wait for
 * everything sent so far to be acknowledged or to fail (a worker's tick and what it published).
 */
export interface InFlight {
  /** Remembers `p` until it settles; returns it unchanged. */
  track<T>(p: Promise<T>): Promise<T>;
  /** Resolves once every promise tracked before this call has settled (never rejects). */
  settled(): Promise<void>;
  size(): number;
}

export function createInFlight(): InFlight {
  const live = new Set<Promise<void>>();
  return {
    track(p) {
      const done: Promise<void> = p.then(
        () => void live.delete(done),
        () => void live.delete(done),
      );
      live.add(done);
      return p;
    },
    async settled() {
      await Promise.all([...live]);
    },
    size: () => live.size,
  };
}
