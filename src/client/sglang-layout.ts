// `push --layout sglang`: writes an artifact into Redis in the per-rank layout SGLang's RemoteModelLoader
// reads (`--load-format remote`, RedisConnector): for the URL path <model>, every TP rank r and every SGLang
// parameter p, key `<model>/keys/rank_<r>/<p>` holds `safetensors.torch.save({"tensor_bytes": slice})`, and
// `<model>/files/<name>` holds each config and tokenizer file as a UTF-8 string. These are plain Redis keys
// (SET key value), outside the connector's chunk + manifest format, because that is what SGLang's reader
// GETs; they are written as one batch that becomes visible at once and replaces the model's previous keys.

import { mapLimit } from '../core/async.js';
import { tcError } from '../core/errors.js';
import type { ConnectorOptions } from '../connectors/connector-options.js';
import { RedisPlainKeys, type RedisKeyBatch } from '../connectors/redis/redis-plain-keys.js';
import { SglangParams, sglangValue } from './sglang-params.js';
import type { TensorcastClient } from './tensorcast-client.js';
import type { Transport } from './tensorcast-client.js';

/** Bytes of values being sent at once. */
const MAX_SENDING_BYTES = 256 * 1024 * 1024;
/** Values being sent at once, by default. */
const MAX_SENDING_VALUES = 16;

/** Options of {@link pushSglangLayout}. */
export interface SglangPushOptions {
  /** Tensor-parallel size of the SGLang deployment (`--tp-size`): ranks 0..tpSize-1 are written. */
  readonly tpSize: number;
  /** How the rank's bytes come from the daemon (default 'tcp'). */
  readonly transport?: Transport;
  /** Hears about bytes of tensors streamed from the daemon, for progress. */
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Passed to the Redis client (retries, timeouts, a logger). */
  readonly connector?: ConnectorOptions;
  /** Values being sent to Redis at once (`--concurrency`; default 16, bounded by 256 MiB in flight). */
  readonly concurrency?: number;
}

/** What {@link pushSglangLayout} wrote. */
export interface SglangPushInfo {
  /** The Redis URL, password redacted. */
  readonly url: string;
  /** The model name (the URL path): every key starts with `<model>/`. */
  readonly model: string;
  readonly artifactId: string;
  readonly tpSize: number;
  /** Parameter keys written (all ranks). */
  readonly keys: number;
  /** Bytes of the values under `<model>/keys/`. */
  readonly bytes: number;
  /** Files written under `<model>/files/`. */
  readonly files: readonly string[];
  /** Files of the artifact left out because they are not UTF-8 text (SGLang stores files as strings). */
  readonly skippedFiles: readonly string[];
  /** Keys of a previous push under `<model>/keys/` and `<model>/files/` that the new layout replaced. */
  readonly removed: number;
}

const isRedisUrl = (url: string): boolean => /^rediss?:\/\//i.test(url);

/**
 * Writes artifact `keyOrId` to the Redis server of `url` in SGLang's per-rank layout, for TP size
 * `options.tpSize`: each rank's view streams from the daemon (client.weights), its parameters are named,
 * fused and serialized as SGLang's Llama-family models have them (sglang-params.ts), and all keys
 * become visible together when the push completes (nothing is visible after a failure).
 *
 * @throws TC_ERR_INVALID_ARGUMENT for a URL that is not redis:// or rediss://, or has no model name; a bad
 *   tpSize; a value above the server's limit; TC_ERR_LAYOUT_* when the model does not split into tpSize
 *   ranks; TC_ERR_NOT_FOUND for an unknown key; TC_ERR_AUTH, TC_ERR_BACKEND from Redis.
 * @example
 * const info = await pushSglangLayout(client, 'model:llama:v1', 'redis://10.0.0.5:6379/llama-3-8b', { tpSize: 2 });
 */
export async function pushSglangLayout(
  client: TensorcastClient,
  keyOrId: string,
  url: string,
  options: SglangPushOptions,
): Promise<SglangPushInfo> {
  const { tpSize } = options;
  if (!Number.isSafeInteger(tpSize) || tpSize < 1 || tpSize > 1 << 16) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `--tp-size must be a positive integer, got ${String(tpSize)}`);
  }
  const concurrency = options.concurrency ?? MAX_SENDING_VALUES;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 1024) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `concurrency must be an integer from 1 to 1024, got ${String(concurrency)}`);
  }
  if (!isRedisUrl(url)) {
    throw tcError(
      'TC_ERR_INVALID_ARGUMENT',
      "the sglang layout is written to Redis (SGLang's RedisConnector): give a redis:// or rediss:// URL",
    );
  }
  // One artifact for every rank, even if the key is rebound meanwhile.
  const artifactId = await client.resolve(keyOrId);
  const plans = [];
  for (let rank = 0; rank < tpSize; rank++) plans.push(await client.plan(artifactId, { tp: { size: tpSize, rank } }));
  const files = plans[0]!.files;
  const config = files.includes('config.json') ? parseConfig(await client.file(artifactId, 'config.json')) : {};
  const space = await RedisPlainKeys.open(url, options.connector ?? {});
  try {
    const model = space.prefix;
    if (model === '') {
      throw tcError('TC_ERR_INVALID_ARGUMENT', `${space.displayUrl}: name the model in the URL path (redis://host:port/<model>)`);
    }
    const total = plans.reduce((n, p) => n + p.totalBytes, 0);
    let done = 0;
    options.onProgress?.(0, total);
    const batch = space.batch();
    const sender = new BoundedSender(batch, concurrency);
    try {
      let keys = 0;
      for (let rank = 0; rank < tpSize; rank++) {
        const params = new SglangParams({ tieWordEmbeddings: config.tie_word_embeddings === true });
        for await (const tensor of client.weights(artifactId, {
          tp: { size: tpSize, rank },
          ...(options.transport === undefined ? {} : { transport: options.transport }),
        })) {
          for (const p of params.add(tensor)) {
            await sender.send(`${model}/keys/rank_${rank}/${p.name}`, sglangValue(p));
            keys++;
          }
          done += tensor.data.length;
          options.onProgress?.(done, total);
        }
        params.finish();
      }
      const texts = await mapLimit(files, 4, async (name) => ({ name, text: utf8(await client.file(artifactId, name)) }));
      for (const { name, text } of texts) if (text !== undefined) await sender.send(`${model}/files/${name}`, text);
      await sender.drain();
      const written = new Set(batch.keys);
      const previous = [...(await space.keys(`${model}/keys/`)), ...(await space.keys(`${model}/files/`))];
      const obsolete = previous.filter((k) => !written.has(k));
      await batch.commit(obsolete);
      return {
        url: space.displayUrl,
        model,
        artifactId,
        tpSize,
        keys,
        bytes: sender.valueBytes,
        files: texts.filter((f) => f.text !== undefined).map((f) => f.name),
        skippedFiles: texts.filter((f) => f.text === undefined).map((f) => f.name),
        removed: obsolete.length,
      };
    } catch (error) {
      await sender.settle();
      await batch.discard();
      throw error;
    }
  } finally {
    await space.close();
  }
}

/** config.json's fields the layout needs. */
function parseConfig(bytes: Uint8Array): { tie_word_embeddings?: unknown } {
  try {
    const value: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    return typeof value === 'object' && value !== null ? value : {};
  } catch (error) {
    throw tcError('TC_ERR_INVALID_ARGUMENT', `the artifact's config.json is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** `bytes` as text, or undefined when they are not UTF-8. */
function utf8(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Sends values into a batch with a bound on the values and bytes in flight; the first failure ends it. */
class BoundedSender {
  private readonly inFlight = new Set<Promise<void>>();
  private bytesInFlight = 0;
  private failure: { error: unknown } | undefined;
  /** Bytes of parameter values sent (files excluded). */
  valueBytes = 0;

  constructor(
    private readonly batch: RedisKeyBatch,
    private readonly maxValues: number,
  ) {}

  async send(key: string, value: Buffer | string): Promise<void> {
    const bytes = typeof value === 'string' ? Buffer.byteLength(value) : value.length;
    while (this.inFlight.size > 0 && (this.inFlight.size >= this.maxValues || this.bytesInFlight + bytes > MAX_SENDING_BYTES)) {
      await Promise.race(this.inFlight);
    }
    this.check();
    if (typeof value !== 'string') this.valueBytes += bytes;
    this.bytesInFlight += bytes;
    const p: Promise<void> = this.batch.set(key, value).then(
      () => undefined,
      (error: unknown) => void (this.failure ??= { error }),
    );
    this.inFlight.add(p);
    void p.finally(() => {
      this.inFlight.delete(p);
      this.bytesInFlight -= bytes;
    });
  }

  /** Waits for every value sent. @throws the first failure */
  async drain(): Promise<void> {
    await Promise.all(this.inFlight);
    this.check();
  }

  /** Waits for every value sent, failed or not. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inFlight);
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }
}
