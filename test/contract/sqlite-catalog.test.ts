import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCatalog } from '../../src/catalog/open-catalog.js';
import { SqliteCatalog } from '../../src/catalog/sqlite/sqlite-catalog.js';
import { tempDir } from '../helpers/tmp.js';
import { runCatalogContract } from './catalog-contract.js';

runCatalogContract('sqlite :memory:', () => Promise.resolve(SqliteCatalog.open(':memory:')), {
  sharedUrl: (t) => `sqlite://${join(tempDir(t), 'catalog.db')}`,
});

test('sqlite catalog: keys survive reopening the file; unknown schemes are config errors', async (t) => {
  const path = join(tempDir(t), 'sub', 'catalog.db');
  const c = await openCatalog(`sqlite://${path}`);
  await c.putArtifact({
    artifactId: 'a',
    indexHash: 'i',
    dataHash: 'd',
    totalBytes: 1,
    tensorCount: 1,
    indexJson: '{}',
    files: [],
    createdAt: 1,
  });
  await c.bindKey('k', 'a');
  await c.close();
  const again = await openCatalog(`sqlite://${path}`);
  assert.equal((await again.resolveKey('k'))?.artifactId, 'a');
  await again.close();
  await assert.rejects(openCatalog('mysql://x'), { code: 'TC_ERR_CONFIG' });
});
