// The session cache's acceptance property (test/contract/session-cache-property.ts) on memory and SQLite
// metadata with a file:// cold tier, and on a Redis cold tier.

import { join } from 'node:path';
import { test } from 'node:test';
import { redisConnectorUrl } from '../harness/services.js';
import { coldDirUrl } from '../helpers/session-fixtures.js';
import { tempDir } from '../helpers/tmp.js';
import { runCacheProperty } from './session-cache-property.js';

test('session cache property: memory metadata, file:// cold', async (t) => {
  await runCacheProperty(t, { cold: coldDirUrl(t), meta: 'memory' });
});

test('session cache property: sqlite metadata, file:// cold', async (t) => {
  await runCacheProperty(t, { cold: coldDirUrl(t), meta: `sqlite://${join(tempDir(t), 'sessions.db')}` });
});

test('session cache property: memory metadata, redis:// cold', async (t) => {
  const cold = await redisConnectorUrl(t);
  if (cold === undefined) return;
  await runCacheProperty(t, { cold, meta: 'memory' });
});
