// Opens a feature store on a connector URL (file://, redis://, s3://); the store owns the connector and
// closes it with itself. The daemon's stores come from the SDK: client.features(storeId, options).

import { createConnector } from '../connectors/create-connector.js';
import type { ConnectorOptions } from '../connectors/connector-options.js';
import { ConnectorFeatureBackend } from './connector-backend.js';
import { FeatureStore, type FeatureStoreOptions } from './feature-store.js';

/**
 * A FeatureStore on the connector at `url`.
 *
 * @throws what createConnector throws (TC_ERR_INVALID_ARGUMENT for a bad URL, TC_ERR_AUTH, TC_ERR_BACKEND)
 * @example
 * const store = await openFeatureStore('s3://features/run-7?endpoint=http://127.0.0.1:9000', 'train', { layout: 'packed' });
 * const ref = await store.put('s-1', { hidden: { data, dtype: 'BF16', shape: [128, 4096] } });
 * await store.close();
 */
export async function openFeatureStore(
  url: string,
  storeId: string,
  options: FeatureStoreOptions = {},
  connectorOptions: ConnectorOptions = {},
): Promise<FeatureStore> {
  const connector = await createConnector(url, connectorOptions);
  try {
    const backend = new ConnectorFeatureBackend(connector);
    return new FeatureStore(storeId, backend, options, () => backend.close());
  } catch (error) {
    await connector.close();
    throw error;
  }
}
