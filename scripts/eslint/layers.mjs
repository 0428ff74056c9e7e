// Lint rule `tensorcast/layers`: the import direction of docs/architecture.md section 2. Every relative
// import (static, re-export or dynamic) in src/ is resolved against the importing file, so nested folders
// are checked by where the imported file really lives, not by how the path is spelled.
import { dirname, relative, resolve, sep } from 'node:path';

const below = (...names) => names;
const base = below('core', 'format', 'layout', 'bytes', 'protocol');

/** Which top-level folders of src/ each folder may import from (besides itself). */
export const LAYERS = {
  core: [],
  format: ['core'],
  layout: ['core', 'format'],
  bytes: ['core', 'format', 'layout'],
  protocol: ['core', 'format', 'layout', 'bytes'],
  transport: [...base],
  catalog: [...base],
  connectors: [...base, 'transport'],
  store: [...base, 'transport', 'catalog', 'connectors'],
  routing: [...base, 'transport', 'catalog', 'connectors', 'store'],
  metrics: ['core'],
  // The daemon may run a handshake listener (--handshake-listen): it imports handshake's server side only.
  daemon: [...base, 'transport', 'catalog', 'connectors', 'store', 'routing', 'metrics', 'handshake', 'sessions'],
  // The feature store is written against its own backend interface: the SDK gives it the daemon's object
  // API (client.features()), a connector gives it a remote backend; so client imports features, not back.
  features: [...base, 'transport', 'connectors'],
  client: [...base, 'transport', 'connectors', 'metrics', 'features', 'sessions'],
  // The session cache runs embedded (createSessionCache) or in the daemon; the SDK imports its types and API.
  sessions: [...base, 'transport', 'catalog', 'connectors', 'metrics'],
  // The handshake service and its SDK: HTTP + msgpack of their own; stores reuse the catalog's URL parsing.
  handshake: [...base, 'transport', 'catalog'],
  cli: [...base, 'client', 'connectors', 'handshake'],
};

/** Single files allowed one more folder: `serve` is the one command that runs a daemon in-process. */
export const EXCEPTIONS = { [`cli${sep}commands${sep}serve.ts`]: ['daemon'] };

/** @param {string} srcDir absolute path of src/ */
export function layersPlugin(srcDir) {
  return {
    rules: {
      layers: {
        meta: { type: 'problem', schema: [], docs: { description: 'imports flow one way (docs/architecture.md section 2)' } },
        create(context) {
          const file = context.filename;
          const rel = relative(srcDir, file);
          if (rel.startsWith('..') || !rel.includes(sep)) return {};
          const from = rel.split(sep)[0];
          const allowed = [...(LAYERS[from] ?? []), ...(EXCEPTIONS[rel] ?? [])];
          const check = (node) => {
            const spec = node?.type === 'Literal' ? node.value : undefined;
            if (typeof spec !== 'string' || !spec.startsWith('.')) return;
            const target = relative(srcDir, resolve(dirname(file), spec));
            // Tests beside the code may use the shared test helpers and fixtures under test/.
            if (target.startsWith('..') && file.endsWith('.test.ts')) return;
            if (target.startsWith('..')) {
              context.report({ node, message: `src/${from} may not import from outside src/ ('${spec}')` });
              return;
            }
            const to = target.split(sep)[0];
            if (!target.includes(sep)) {
              context.report({ node, message: `src/${from} may not import the package entry point src/${to}` });
              return;
            }
            if (to === from || allowed.includes(to)) return;
            if (LAYERS[from] === undefined) {
              context.report({ node, message: `src/${from} is not a known layer: add it to scripts/eslint/layers.mjs` });
              return;
            }
            context.report({ node, message: `src/${from} may not import from src/${to} (docs/architecture.md section 2)` });
          };
          return {
            ImportDeclaration: (n) => check(n.source),
            ExportNamedDeclaration: (n) => check(n.source),
            ExportAllDeclaration: (n) => check(n.source),
            ImportExpression: (n) => check(n.source),
          };
        },
      },
    },
  };
}
