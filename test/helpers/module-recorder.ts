// Preloaded with `node --import` into a CLI run by a test: at exit, writes the npm packages the process
// loaded (one name a line) to the file named by TENSORCAST_RECORD_MODULES. It reads node's CommonJS module
// cache, which also holds CommonJS packages imported from ESM (fastify, pino, undici, better-sqlite3,
// prom-client, commander all are); a pure-ESM package would not show.

import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const out = process.env['TENSORCAST_RECORD_MODULES'];
if (out !== undefined && out !== '') {
  const cache = createRequire(import.meta.url).cache;
  process.on('exit', () => {
    writeFileSync(out, `${packagesOf(Object.keys(cache)).join('\n')}\n`);
  });
}

/** The package names (`fastify`, `@fastify/error`) of module paths under node_modules, sorted, once each. */
export function packagesOf(paths: readonly string[]): string[] {
  const names = new Set<string>();
  for (const p of paths) {
    const at = p.lastIndexOf('/node_modules/');
    if (at < 0) continue;
    const parts = p.slice(at + '/node_modules/'.length).split('/');
    const name = parts[0]?.startsWith('@') === true ? `${parts[0]}/${parts[1]}` : parts[0];
    if (name !== undefined && name !== '') names.add(name);
  }
  return [...names].sort();
}
