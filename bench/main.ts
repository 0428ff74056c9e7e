// `npm run bench -- [suite...] [--json FILE] [--repeats N]`: runs benchmark suites and prints ratios
// against baselines measured in the same run. Suites: gather, file, safetensors, daemon, cli, remote, connectors,
// first-load, features, handshake, sessions, python (default: all).

import { writeFileSync } from 'node:fs';
import { activeKernel } from '../src/bytes/gather-kernel.js';
import { fileSuite } from './file.js';
import { gatherSuite } from './gather.js';
import { printResults, type BenchResult } from './measure.js';
import { safetensorsSuite } from './safetensors.js';
import { daemonSuite } from './daemon.js';
import { cliSuite } from './cli.js';
import { remoteSuite } from './remote.js';
import { connectorsSuite } from './connectors.js';
import { firstLoadSuite } from './first-load.js';
import { featuresSuite } from './features.js';
import { handshakeSuite } from './handshake.js';
import { sessionsSuite } from './sessions.js';
import { pythonSuite } from './python.js';

const SUITES: Record<string, (repeats: number) => Promise<BenchResult[]>> = {
  gather: gatherSuite,
  file: fileSuite,
  safetensors: safetensorsSuite,
  daemon: daemonSuite,
  cli: cliSuite,
  remote: remoteSuite,
  connectors: connectorsSuite,
  'first-load': (repeats) => firstLoadSuite(repeats),
  features: featuresSuite,
  handshake: handshakeSuite,
  sessions: sessionsSuite,
  python: pythonSuite,
};

const args = process.argv.slice(2);
let jsonPath: string | undefined;
let repeats = 5;
const chosen: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--json') jsonPath = args[++i];
  else if (a === '--repeats') repeats = Number(args[++i]);
  else if (a in SUITES) chosen.push(a);
  else {
    console.error(`bench: unknown suite or flag '${a}'. Suites: ${Object.keys(SUITES).join(', ')}; flags: --json FILE, --repeats N`);
    process.exit(2);
  }
}
console.log(
  `tensorcast bench: kernel ${activeKernel}, best of ${repeats} runs after a warm-up; ratio = ours / baseline (above 1 is faster)`,
);
const results: BenchResult[] = [];
for (const name of chosen.length > 0 ? chosen : Object.keys(SUITES)) {
  const rs = await SUITES[name]!(repeats);
  printResults(rs);
  results.push(...rs);
}
if (jsonPath !== undefined) {
  writeFileSync(jsonPath, `${JSON.stringify({ kernel: activeKernel, repeats, node: process.version, results }, null, 2)}\n`);
  console.log(`wrote ${jsonPath}`);
}
