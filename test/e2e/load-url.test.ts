// Loading straight from a connector URL, with no daemon and no import: `tensorcast load URL` and the SDK's
// weightsFromUrl read a model kept in a directory, in Redis and in an S3-compatible server, and every TP
// rank of 1, 2 and 4 equals an independent reference; a TP=4 rank fetches about its own bytes.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test, type TestContext } from 'node:test';
import { weightsFromUrl } from '../../src/client/url-model.js';
import { createConnector } from '../../src/connectors/create-connector.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';
import { redisConnectorUrl, s3ConnectorUrl } from '../harness/services.js';
import { runCli } from '../helpers/cli.js';
import { assertTensorsEqual, readConfig, readTensors, referenceTp } from '../helpers/reference-tp.js';
import { tempDir } from '../helpers/tmp.js';

/** Writes a tiny Llama and copies its files into the connector at `url`; returns the model directory. */
async function modelAt(t: TestContext, url: string | undefined): Promise<string> {
  const model = join(tempDir(t), 'm');
  await writeSyntheticModel(model, TINY_LLAMA);
  if (url !== undefined) {
    const c = await createConnector(url);
    try {
      for (const name of readdirSync(model)) await c.write(name, readFileSync(join(model, name)));
    } finally {
      await c.close();
    }
  }
  return model;
}

async function scenario(t: TestContext, url: string, model: string): Promise<void> {
  const source = await readTensors(model);
  const config = readConfig(model);
  const total = [...source.values()].reduce((n, x) => n + x.data.length, 0);
  for (const tp of [1, 2, 4]) {
    for (let rank = 0; rank < tp; rank++) {
      const out = join(tempDir(t), `tp${tp}r${rank}.safetensors`);
      const r = await runCli(['load', url, '--tp-size', String(tp), '--tp-rank', String(rank), '--out', out, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assertTensorsEqual(await readTensors(out), referenceTp(source, config, tp, rank), `${url} tp${tp} rank ${rank}`);
      const json = JSON.parse(r.stdout) as { wireBytes: number; bytes: number };
      if (tp === 4) assert.ok(json.wireBytes < total / 2, `a TP=4 rank fetched ${json.wireBytes} of the model's ${total} bytes`);
    }
  }
  const streamed = new Map<string, { dtype: string; shape: readonly number[]; data: Uint8Array }>();
  for await (const w of weightsFromUrl(url, { tp: { size: 2, rank: 1 }, maxInFlightBytes: 256 << 10 })) streamed.set(w.name, w);
  assertTensorsEqual(streamed, referenceTp(source, config, 2, 1), `${url} weightsFromUrl`);
}

test('load URL without a daemon: a model directory (file://)', async (t) => {
  const model = await modelAt(t, undefined);
  await scenario(t, pathToFileURL(model).href, model);
  const missing = await runCli(['load', `${pathToFileURL(model).href}-missing`, '--out', join(tempDir(t), 'x.safetensors')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /TC_ERR_NOT_FOUND/);
});

test('load URL without a daemon: Redis', async (t) => {
  const url = await redisConnectorUrl(t);
  if (url === undefined) return;
  await scenario(t, url, await modelAt(t, url));
});

test('load URL without a daemon: an S3-compatible server', async (t) => {
  const url = await s3ConnectorUrl(t);
  if (url === undefined) return;
  await scenario(t, url, await modelAt(t, url));
});
