// The feature-store contract on an S3-compatible server (TENSORCAST_TEST_S3_URL, else s3rver started by the
// harness; a fresh bucket per test).

import { createConnector } from '../../src/connectors/create-connector.js';
import { s3ConnectorUrl } from '../harness/services.js';
import { runFeatureStoreContract } from './feature-store-contract.js';
import { connectorTarget } from './feature-store-targets.js';

runFeatureStoreContract('s3', async (t) => {
  const url = await s3ConnectorUrl(t);
  return url === undefined ? undefined : connectorTarget(t, url, () => createConnector(url));
});
