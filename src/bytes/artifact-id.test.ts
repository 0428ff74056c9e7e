import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.js';
import { TREE_LEAF_BYTES } from '../core/hashing.js';
import { saveSafetensors } from '../format/safetensors-writer.js';
import { fillPattern, writeSyntheticModel } from '../format/synthetic-model.js';
import { computeArtifactIdentity } from './artifact-id.js';
import { openLocalArtifact } from './local-artifact.js';
import { MemorySource } from './memory-source.js';
import { buildCanonicalIndex } from '../layout/canonical-index.js';

test('artifact id: independent of sharding and file layout, sensitive to every byte and to the index', async (t) => {
  const dir = tempDir(t);
  const opts = { hiddenSize: 512, intermediateSize: 1024, numLayers: 2, numHeads: 8, numKvHeads: 2, vocabSize: 4096 };
  await writeSyntheticModel(join(dir, 'a'), { ...opts, shards: 3 });
  await writeSyntheticModel(join(dir, 'b'), { ...opts, shards: 1 });
  const id = async (p: string) => {
    const a = await openLocalArtifact(p);
    try {
      return await computeArtifactIdentity(a.index, a.source);
    } finally {
      await a.close();
    }
  };
  const [a, b] = [await id(join(dir, 'a')), await id(join(dir, 'b'))];
  assert.ok(a.leafHashes.length > 1, 'the model spans several leaves');
  assert.equal(a.artifactId, b.artifactId);
  assert.match(a.artifactId, /^tc1:[0-9a-f]{64}$/);
  // One byte changed in one tensor changes the data hash but not the index hash.
  await writeSyntheticModel(join(dir, 'c'), { ...opts, shards: 1, seed: 2 });
  const c = await id(join(dir, 'c'));
  assert.equal(c.indexHash, a.indexHash);
  assert.notEqual(c.dataHash, a.dataHash);
  // Same bytes under another name: the index hash differs.
  const data = new Uint8Array(TREE_LEAF_BYTES + 10);
  fillPattern(data, 5);
  await saveSafetensors(join(dir, 'x.safetensors'), [{ name: 'x', dtype: 'U8', shape: [data.length], data }]);
  await saveSafetensors(join(dir, 'y.safetensors'), [{ name: 'y', dtype: 'U8', shape: [data.length], data }]);
  const [x, y] = [await id(join(dir, 'x.safetensors')), await id(join(dir, 'y.safetensors'))];
  assert.equal(x.dataHash, y.dataHash);
  assert.notEqual(x.artifactId, y.artifactId);
  // Memory and file sources agree.
  const mem = await computeArtifactIdentity(
    buildCanonicalIndex([{ name: 'x', dtype: 'U8', shape: [data.length], byteLength: data.length, shard: 0, filePosition: 0 }], []),
    new MemorySource([data]),
  );
  assert.equal(mem.artifactId, x.artifactId);
});
