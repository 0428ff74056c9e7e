// The feature-store contract on a real Redis (TENSORCAST_TEST_REDIS_URL, else redis-server from PATH), each
// test under its own key prefix.

import { createConnector } from '../../src/connectors/create-connector.js';
import { redisConnectorUrl } from '../harness/services.js';
import { TEST_CHUNK_BYTES } from './connector-contract.js';
import { runFeatureStoreContract } from './feature-store-contract.js';
import { connectorTarget } from './feature-store-targets.js';

runFeatureStoreContract('redis', async (t) => {
  const url = await redisConnectorUrl(t);
  return url === undefined ? undefined : connectorTarget(t, url, () => createConnector(url, { chunkBytes: TEST_CHUNK_BYTES }));
});
