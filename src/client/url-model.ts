// A model read straight from a connector URL, with no daemon and no import: the headers and index are
// read with a few ranged reads, the selection (tensors, a view, a TP rank) is planned here, and every read
// runs the executor over the connector's bytes, fetching only the ranges the view's program needs. What
// `tensorcast load URL` and `weightsFromUrl` use.

import { Materializer } from '../bytes/materialize.js';
import { ConnectorSource } from '../connectors/connector-source.js';
import type { ConnectorOptions } from '../connectors/connector-options.js';
import { createConnector } from '../connectors/create-connector.js';
import { readPolicyFor, connectorScheme } from '../connectors/read-policy.js';
import { indexRemoteModel, openRemoteModel } from '../connectors/remote-model.js';
import { tcError } from '../core/errors.js';
import type { Selection } from '../layout/selection.js';
import { selectView } from '../layout/selection.js';
import { compileProgram, programWindow } from '../layout/program.js';
import { parseModelConfig } from '../layout/tp-layout.js';
import { specOfView } from '../layout/view.js';
import type { LoadPlan } from './tensorcast-client.js';
import type { Transfer } from './transfers.js';
import { streamWeights, type WeightStreamOptions, type WeightTensor } from './weight-stream.js';

/** A planned selection of a model in a connector, and a transfer that reads it. */
export interface UrlModel {
  readonly plan: LoadPlan;
  /** Reads ranges of the planned output; `remote().wireBytes` counts the bytes fetched from the connector. */
  readonly transfer: Transfer;
}

/**
 * Opens the model under `url` and plans `selection` on it (TP layouts read the model's config.json from
 * the connector). Close the transfer when done (it closes the connector). `options` go to
 * {@link createConnector} (`concurrency`: ranged requests in flight; `chunkBytes`: S3's ranged-GET size).
 *
 * @throws the connector's errors (TC_ERR_NOT_FOUND, TC_ERR_AUTH, TC_ERR_BACKEND, TC_ERR_SOURCE_CHANGED),
 *   TC_ERR_FORMAT_*, TC_ERR_VIEW_*, TC_ERR_LAYOUT_*; TC_ERR_INVALID_ARGUMENT for a bad option
 * @example
 * const { plan, transfer } = await openUrlModel('s3://models/llama?endpoint=http://127.0.0.1:9000', { tp: { size: 4, rank: 1 } });
 * const out = Buffer.allocUnsafe(plan.totalBytes);
 * await transfer.read(0, plan.totalBytes, out);
 * await transfer.close();
 */
export async function openUrlModel(url: string, selection: Selection = {}, options: ConnectorOptions = {}): Promise<UrlModel> {
  const connector = await createConnector(url, options);
  try {
    const model = await openRemoteModel(connector);
    const index = indexRemoteModel(model);
    const view = await selectView(index, selection, async () => {
      const config = model.extraObjects.find((o) => o.key === 'config.json');
      if (config === undefined) throw tcError('TC_ERR_LAYOUT_CONFIG', `${model.displayUrl} has no config.json (needed for TP layouts)`);
      const bytes = Buffer.allocUnsafe(config.size);
      await connector.readInto(config.key, 0, bytes, { etag: config.etag });
      return parseModelConfig(bytes, `${model.displayUrl}/config.json`);
    });
    const program = compileProgram(view);
    const source = ConnectorSource.fromIndex(
      connector,
      index,
      model.shards.map((s) => s.etag),
      { ...readPolicyFor(connectorScheme(url)), ownsConnector: true },
    );
    const plan: LoadPlan = {
      artifactId: model.displayUrl,
      key: undefined,
      view: specOfView(view),
      viewId: view.viewId,
      totalBytes: program.totalBytes,
      tensors: program.tensors,
      metadata: index.metadata,
      files: model.extraFiles,
    };
    const materializer = new Materializer();
    const transfer: Transfer = {
      read: async (start, end, dest) => {
        await materializer.run(programWindow(program, start, end), source, dest);
      },
      source: () => 'connector',
      route: () => 'canonical',
      remote: () => ({ fallback: null, sourceDaemon: null, wireBytes: source.bytesRead, readBytes: source.bytesRead }),
      connections: 0,
      close: () => source.close(),
    };
    return { plan, transfer };
  } catch (error) {
    await connector.close().catch(() => undefined);
    throw error;
  }
}

/**
 * The tensors of a selection of a model in a connector, each yielded as soon as its bytes arrived, in plan
 * order, with at most `maxInFlightBytes` fetched ahead (see {@link streamWeights}).
 *
 * @example for await (const t of weightsFromUrl('redis://127.0.0.1:6379/llama', { tp: { size: 2, rank: 0 } })) use(t);
 */
export async function* weightsFromUrl(
  url: string,
  options: Selection & WeightStreamOptions = {},
): AsyncGenerator<WeightTensor, void, undefined> {
  const { tensors, view, tp, ...stream } = options;
  const { plan, transfer } = await openUrlModel(url, {
    ...(tensors === undefined ? {} : { tensors }),
    ...(view === undefined ? {} : { view }),
    ...(tp === undefined ? {} : { tp }),
  });
  yield* streamWeights(plan.tensors, transfer, stream);
}
