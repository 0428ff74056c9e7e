// The multi-turn trace of the sessions benchmark and the offline policies it is held against. A trace is a
// list of turns: a session (Zipf popularity) reads its whole prefix, then appends the KV of the new tokens.
// `simulate` replays it on a hot tier of a byte budget under LRU (what the cache does) or Belady's MIN
// (offline optimal: evict, or do not admit, the session whose next use is furthest away).

/** One turn of a conversation. */
export interface Turn {
  readonly session: number;
  /** Bytes of the session before the turn (read whole when > 0). */
  readonly prefixBytes: number;
  /** Bytes the turn appends. */
  readonly appendBytes: number;
}

/** Options of {@link makeTrace}. */
export interface TraceOptions {
  readonly sessions: number;
  readonly turns: number;
  /** Zipf exponent of the sessions' popularity. */
  readonly zipf: number;
  /** Tokens a turn appends: uniform in [min, max]. */
  readonly minTokens: number;
  readonly maxTokens: number;
  readonly bytesPerToken: number;
  readonly seed: number;
}

/** A seeded xorshift32 generator: numbers in [0, 1). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** A deterministic trace. */
export function makeTrace(o: TraceOptions): Turn[] {
  const next = rng(o.seed);
  const weights = Array.from({ length: o.sessions }, (_, i) => 1 / (i + 1) ** o.zipf);
  const cumulative: number[] = [];
  let sum = 0;
  for (const w of weights) cumulative.push((sum += w));
  const sizes = new Array<number>(o.sessions).fill(0);
  const turns: Turn[] = [];
  for (let i = 0; i < o.turns; i++) {
    const r = next() * sum;
    let session = cumulative.findIndex((c) => c >= r);
    if (session < 0) session = o.sessions - 1;
    const tokens = o.minTokens + Math.floor(next() * (o.maxTokens - o.minTokens + 1));
    const appendBytes = tokens * o.bytesPerToken;
    turns.push({ session, prefixBytes: sizes[session]!, appendBytes });
    sizes[session]! += appendBytes;
  }
  return turns;
}

/** Bytes of every session at the end of the trace (the working set). */
export const workingSet = (trace: readonly Turn[]): number => trace.reduce((sum, t) => sum + t.appendBytes, 0);

/** What a replay counted: prefix reads found hot, and bytes brought into the hot tier from cold. */
export interface PolicyResult {
  readonly reads: number;
  readonly hits: number;
  readonly servedBytes: number;
  readonly swapInBytes: number;
}

/**
 * Replays `trace` on a hot tier of `budgetBytes`. A prefix read of a session not resident is a miss and
 * brings it in (when it fits and, for MIN, when it is worth it); an append grows a resident session, making
 * room first (a session that no longer fits drops out).
 */
export function simulate(trace: readonly Turn[], budgetBytes: number, policy: 'lru' | 'min'): PolicyResult {
  // Next use of each turn's session after turn i (Infinity when none).
  const nextUse = new Array<number>(trace.length);
  const seen = new Map<number, number>();
  for (let i = trace.length - 1; i >= 0; i--) {
    const s = trace[i]!.session;
    nextUse[i] = seen.get(s) ?? Number.POSITIVE_INFINITY;
    seen.set(s, i);
  }
  const resident = new Map<number, number>(); // session -> bytes, in LRU order
  const nextOf = new Map<number, number>(); // session -> index of its next turn
  let used = 0;
  let reads = 0;
  let hits = 0;
  let servedBytes = 0;
  let swapInBytes = 0;
  const evictOne = (except: number): boolean => {
    let victim: number | undefined;
    if (policy === 'lru') {
      for (const s of resident.keys()) {
        if (s !== except) {
          victim = s;
          break;
        }
      }
    } else {
      let furthest = -1;
      for (const s of resident.keys()) {
        const n = nextOf.get(s) ?? Number.POSITIVE_INFINITY;
        if (s !== except && n > furthest) {
          furthest = n;
          victim = s;
        }
      }
    }
    if (victim === undefined) return false;
    used -= resident.get(victim)!;
    resident.delete(victim);
    return true;
  };
  /** Makes room for `bytes` more of `session`; false when it cannot (or, for MIN, should not) be resident. */
  const room = (session: number, bytes: number): boolean => {
    if (bytes > budgetBytes) return false;
    if (policy === 'min') {
      // MIN admits only when everything it would evict is used later than this session.
      const mine = nextOf.get(session) ?? Number.POSITIVE_INFINITY;
      let need = used + bytes - budgetBytes;
      const byFurthest = [...resident.keys()]
        .filter((s) => s !== session)
        .sort((a, b) => (nextOf.get(b) ?? Infinity) - (nextOf.get(a) ?? Infinity));
      for (const s of byFurthest) {
        if (need <= 0) break;
        if ((nextOf.get(s) ?? Infinity) < mine) return false;
        need -= resident.get(s)!;
      }
    }
    while (used + bytes > budgetBytes) if (!evictOne(session)) return false;
    return true;
  };
  for (let i = 0; i < trace.length; i++) {
    const t = trace[i]!;
    nextOf.set(t.session, nextUse[i]!);
    if (t.prefixBytes > 0) {
      reads++;
      servedBytes += t.prefixBytes;
      if (resident.has(t.session)) {
        hits++;
        resident.delete(t.session);
        resident.set(t.session, t.prefixBytes);
      } else if (room(t.session, t.prefixBytes)) {
        resident.set(t.session, t.prefixBytes);
        used += t.prefixBytes;
        swapInBytes += t.prefixBytes;
      }
    }
    const size = t.prefixBytes + t.appendBytes;
    const wasResident = resident.has(t.session);
    if (wasResident) {
      used -= resident.get(t.session)!;
      resident.delete(t.session);
    }
    // The append keeps the session hot when the whole of it fits (as the cache does), the bytes written through.
    if ((wasResident || t.prefixBytes === 0) && room(t.session, size)) {
      resident.set(t.session, size);
      used += size;
    }
  }
  return { reads, hits, servedBytes, swapInBytes };
}
