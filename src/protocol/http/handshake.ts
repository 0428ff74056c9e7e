// The handshake service's HTTP contract (docs/handshake.md): routes, headers and the JSON answers, shared by
// the listener (src/handshake/server) and the SDK (src/handshake/client).

/** Health, without a token. */
export const HANDSHAKE_HEALTH_PATH = '/v1/health';
/** Every engine with live ranks (JSON `EngineList`). */
export const HANDSHAKE_ENGINES_PATH = '/v1/engines';

/** `/v1/engines/{engineId}`: GET the JSON summary, DELETE the engine's ranks. */
export const enginePath = (engineId: string): string => `${HANDSHAKE_ENGINES_PATH}/${encodeURIComponent(engineId)}`;
/** `/v1/engines/{engineId}/renew`: POST `{incarnation}` extends the TTL of every rank of that incarnation. */
export const renewPath = (engineId: string): string => `${enginePath(engineId)}/renew`;
/** `/v1/engines/{engineId}/ranks/{tpRank}/{dpRank}`: PUT (publish) and GET one rank's msgpack payload. */
export const rankPath = (engineId: string, tpRank: number, dpRank: number): string => `${enginePath(engineId)}/ranks/${tpRank}/${dpRank}`;

/**
 * The compatibility hash. On PUT: the publisher's (required; must equal the payload's). On GET: the hash the
 * reader expects (optional); a mismatch is a 409 TC_ERR_INCOMPATIBLE before any payload byte is touched. On a
 * GET answer: the published hash, so a reader checks it before decoding the body.
 */
export const COMPAT_HASH_HEADER = 'x-tensorcast-compat-hash';
/** The engine incarnation. On PUT: required (must equal the payload's). On a GET answer: the published one. */
export const INCARNATION_HEADER = 'x-tensorcast-incarnation';
/** On a GET answer: when the rank expires unless renewed (ms since the epoch, the store's clock). */
export const EXPIRES_AT_HEADER = 'x-tensorcast-expires-at';
/** The media type of a rank payload. */
export const MSGPACK_TYPE = 'application/msgpack';

/** Identifiers: engine ids, incarnations and hashes use these characters only (1..128 of them). */
export const HANDSHAKE_ID_PATTERN = /^[A-Za-z0-9._:@+-]{1,128}$/;
/** Largest tp rank and dp rank accepted (exclusive). */
export const MAX_HANDSHAKE_RANK = 4096;

/** One rank in a summary. */
export interface RankSummary {
  readonly tpRank: number;
  readonly dpRank: number;
  /** Bytes of the msgpack payload. */
  readonly bytes: number;
  readonly publishedAtMs: number;
  readonly expiresAtMs: number;
}

/** `GET /v1/engines/{engineId}`: the live ranks of one engine (expired ranks are left out). */
export interface EngineSummary {
  readonly engineId: string;
  readonly incarnation: string;
  readonly compatibilityHash: string;
  /** The engine's TP size, as its payloads give it. */
  readonly tpSize: number;
  readonly ranks: readonly RankSummary[];
}

/** `GET /v1/engines`. */
export interface EngineList {
  readonly engines: readonly EngineSummary[];
}

/** `PUT .../ranks/{tp}/{dp}` answers 200 with this. */
export interface PublishAnswer {
  readonly engineId: string;
  readonly tpRank: number;
  readonly dpRank: number;
  readonly incarnation: string;
  readonly expiresAtMs: number;
  /** The listener's TTL (ms): how long the rank lives unless renewed. A publisher renews from this, never from
   * `expiresAtMs` minus its own clock (the store's clock may be skewed from the publisher's). */
  readonly ttlMs: number;
  /** True when this publish replaced an older incarnation (whose ranks were all dropped). */
  readonly replacedIncarnation: string | null;
}

/** `POST .../renew` answers with this; `DELETE /v1/engines/{id}` with `{removed}`. */
export interface RenewAnswer {
  readonly renewed: number;
  readonly expiresAtMs: number;
}
