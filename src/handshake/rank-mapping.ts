// Heterogeneous TP between a reader (decode, "local") and a remote engine (prefill): which remote TP ranks
// a local rank reads, and which KV heads of each (docs/handshake.md "Rank mapping"). The rules are vLLM's
// (nixl/tp_mapping.py):
// - local TP >= remote TP: local rank r reads one remote, r * remoteTp / localTp, and only its own heads
//   out of that remote's larger head range (several locals read sub-ranges of one remote);
// - local TP < remote TP: local rank r reads remotes r*k .. r*k+k-1 (k = remoteTp / localTp), whole; when
//   the remote replicates KV heads (remoteTp > numKvHeads) only the first remote holding each head is read;
// - a TP above the number of KV heads replicates them: rank r holds head r * numKvHeads / tp alone;
// - MLA: every rank holds the whole latent cache, so a local rank reads one remote, r * remoteTp / localTp.

import { tcError } from '../core/errors.js';
import { MAX_HANDSHAKE_RANK } from '../protocol/http/handshake.js';

/** What `mapRanks` needs. */
export interface RankMappingInput {
  readonly localTp: number;
  readonly localRank: number;
  readonly remoteTp: number;
  /** KV heads of the model (all ranks together); 1 for MLA. */
  readonly numKvHeads: number;
  /** Elements per head; when given, each read also carries element offsets within a token's row. */
  readonly headDim?: number;
  /** Multi-head latent attention: the cache is the same on every rank. */
  readonly mla?: boolean;
}

/** A range of KV heads, absolute (0 .. numKvHeads). */
export interface HeadRange {
  readonly start: number;
  readonly count: number;
}

/** One remote rank a local rank reads. */
export interface RemoteRead {
  readonly remoteRank: number;
  /** The heads read from it (absolute indices). */
  readonly heads: HeadRange;
  /** Where those heads start within the remote rank's own heads (0 when it is read whole). */
  readonly remoteHeadOffset: number;
  /** Where they land within the local rank's heads. */
  readonly localHeadOffset: number;
  /** `remoteHeadOffset * headDim` and `heads.count * headDim`, when headDim was given. */
  readonly remoteElementOffset?: number;
  readonly elementCount?: number;
}

/** The mapping for one local rank. */
export interface RankMapping {
  /** The heads the local rank holds. */
  readonly localHeads: HeadRange;
  /** Remote ranks to read, in local head order. */
  readonly reads: readonly RemoteRead[];
  /** True when the remote holds each head on several ranks (remoteTp > numKvHeads, not MLA). */
  readonly remoteReplicated: boolean;
  /** True when the local side holds each head on several ranks (localTp > numKvHeads, not MLA). */
  readonly localReplicated: boolean;
}

/** The heads rank `rank` of a TP group of `tp` holds. */
export function headsOfRank(tp: number, rank: number, numKvHeads: number): HeadRange {
  if (tp <= numKvHeads) return { start: (rank * numKvHeads) / tp, count: numKvHeads / tp };
  return { start: Math.floor((rank * numKvHeads) / tp), count: 1 };
}

/**
 * Which remote ranks `localRank` reads, and which heads of each.
 *
 * @throws TC_ERR_INVALID_ARGUMENT when a size is not a positive integer (a TP at most 4096), `mla` is not a
 * boolean, the rank is out of range, neither TP
 * divides the other, or a TP and the KV heads do not divide each other.
 * @example mapRanks({ localTp: 4, localRank: 3, remoteTp: 2, numKvHeads: 8 })
 * // { localHeads: {start: 6, count: 2}, reads: [{remoteRank: 1, heads: {start: 6, count: 2}, remoteHeadOffset: 2, ...}] }
 */
export function mapRanks(input: RankMappingInput): RankMapping {
  if (typeof input !== 'object' || input === null) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `rank mapping: input must be an object, not ${String(input)}`);
  }
  const { localTp, localRank, remoteTp, numKvHeads, headDim, mla = false } = input;
  const bad = (why: string): Error => tcError('TC_ERR_INVALID_ARGUMENT', `rank mapping: ${why}`, { details: { ...input } });
  // A TP above the largest rank a listener serves could only name ranks nobody can publish.
  for (const [name, value] of Object.entries({ localTp, remoteTp })) {
    if (!Number.isSafeInteger(value) || value < 1 || value > MAX_HANDSHAKE_RANK) {
      throw bad(`${name} must be an integer in 1..${MAX_HANDSHAKE_RANK} (got ${String(value)})`);
    }
  }
  if (!Number.isSafeInteger(numKvHeads) || numKvHeads < 1) throw bad(`numKvHeads must be a positive integer (got ${String(numKvHeads)})`);
  if (!Number.isSafeInteger(localRank)) throw bad(`localRank must be an integer (got ${JSON.stringify(localRank)})`);
  if (localRank < 0 || localRank >= localTp) throw bad(`localRank ${localRank} is outside 0..${localTp - 1}`);
  if (typeof mla !== 'boolean') throw bad(`mla must be a boolean (got ${JSON.stringify(mla)})`);
  if (headDim !== undefined && (!Number.isSafeInteger(headDim) || headDim < 1 || !Number.isSafeInteger(headDim * numKvHeads))) {
    throw bad(`headDim must be a positive integer whose product with numKvHeads is exact (got ${String(headDim)})`);
  }
  if (Math.max(localTp, remoteTp) % Math.min(localTp, remoteTp) !== 0) {
    throw bad(`local TP ${localTp} and remote TP ${remoteTp}: one must divide the other`);
  }
  if (mla) {
    const all = { start: 0, count: numKvHeads };
    const remoteRank = Math.floor((localRank * remoteTp) / localTp);
    return { localHeads: all, reads: [read(remoteRank, all, 0, 0, headDim)], remoteReplicated: false, localReplicated: false };
  }
  for (const [side, tp] of [
    ['local', localTp],
    ['remote', remoteTp],
  ] as const) {
    if (tp <= numKvHeads ? numKvHeads % tp !== 0 : tp % numKvHeads !== 0) {
      throw bad(`${side} TP ${tp} and ${numKvHeads} KV heads: one must divide the other`);
    }
  }
  const localHeads = headsOfRank(localTp, localRank, numKvHeads);
  let sources: number[];
  if (localTp >= remoteTp) {
    sources = [Math.floor((localRank * remoteTp) / localTp)];
  } else {
    const k = remoteTp / localTp;
    const seen = new Set<number>();
    sources = [];
    for (let r = localRank * k; r < (localRank + 1) * k; r++) {
      const head = headsOfRank(remoteTp, r, numKvHeads).start;
      if (seen.has(head)) continue;
      seen.add(head);
      sources.push(r);
    }
  }
  const reads = sources.map((remoteRank) => {
    const remote = headsOfRank(remoteTp, remoteRank, numKvHeads);
    const start = Math.max(remote.start, localHeads.start);
    const end = Math.min(remote.start + remote.count, localHeads.start + localHeads.count);
    if (end <= start)
      throw tcError('TC_ERR_INTERNAL', `rank mapping: remote rank ${remoteRank} holds none of local rank ${localRank}'s heads`);
    return read(remoteRank, { start, count: end - start }, start - remote.start, start - localHeads.start, headDim);
  });
  return { localHeads, reads, remoteReplicated: remoteTp > numKvHeads, localReplicated: localTp > numKvHeads };
}

function read(
  remoteRank: number,
  heads: HeadRange,
  remoteHeadOffset: number,
  localHeadOffset: number,
  headDim: number | undefined,
): RemoteRead {
  const base = { remoteRank, heads, remoteHeadOffset, localHeadOffset };
  return headDim === undefined ? base : { ...base, remoteElementOffset: remoteHeadOffset * headDim, elementCount: heads.count * headDim };
}
