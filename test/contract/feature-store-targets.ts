// Feature-store contract targets over connectors: backends on one connector URL, and truncation through a
// raw connector (the object rewritten with its first bytes only, as a damaged upload would leave it).

import type { TestContext } from 'node:test';
import type { Connector } from '../../src/connectors/connector.js';
import { ConnectorFeatureBackend } from '../../src/features/connector-backend.js';
import type { FeatureContractTarget } from './feature-store-contract.js';

/** A contract target whose backends are connectors made by `open` (all on the same storage). */
export function connectorTarget(t: TestContext, _url: string, open: () => Promise<Connector>): FeatureContractTarget {
  return {
    backend: async () => new ConnectorFeatureBackend(await open()),
    truncate: async (key, length) => {
      const raw = await open();
      t.after(() => raw.close());
      const head = Buffer.alloc(length);
      await raw.readInto(key, 0, head);
      await raw.write(key, head);
    },
  };
}
