// The feature-store contract on a directory (file://), plus a tensor truncated in place by another tool.

import { truncateSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createConnector } from '../../src/connectors/create-connector.js';
import { ConnectorFeatureBackend } from '../../src/features/connector-backend.js';
import { tempDir } from '../helpers/tmp.js';
import { runFeatureStoreContract } from './feature-store-contract.js';

runFeatureStoreContract('file', (t) => {
  const dir = tempDir(t);
  const url = pathToFileURL(dir).href;
  return Promise.resolve({
    backend: async () => new ConnectorFeatureBackend(await createConnector(url)),
    // In place, as another tool would: the same file, fewer bytes.
    truncate: (key: string, length: number) => Promise.resolve(truncateSync(join(dir, ...key.split('/')), length)),
  });
});
