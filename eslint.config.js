// Lint: typescript-eslint type-checked rules, plus the import direction of docs/architecture.md section 2.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Which modules each folder may import from (besides itself). Imports flow one way:
// core <- format <- layout <- bytes <- protocol <- {catalog, connectors} <- store <- routing <- daemon.
const layers = {
  core: [],
  format: ['core'],
  layout: ['core', 'format'],
  bytes: ['core', 'format', 'layout'],
  protocol: ['core', 'format', 'layout', 'bytes'],
  catalog: ['core', 'format', 'layout', 'bytes', 'protocol'],
  connectors: ['core', 'format', 'layout', 'bytes', 'protocol'],
  store: ['core', 'format', 'layout', 'bytes', 'protocol', 'catalog', 'connectors'],
  routing: ['core', 'format', 'layout', 'bytes', 'protocol', 'catalog', 'connectors', 'store'],
  daemon: ['core', 'format', 'layout', 'bytes', 'protocol', 'catalog', 'connectors', 'store', 'routing', 'metrics'],
  client: ['core', 'format', 'layout', 'bytes', 'protocol', 'metrics'],
  metrics: ['core'],
};
const all = [...Object.keys(layers), 'features', 'sessions', 'handshake', 'cli'];

const directionRules = Object.entries(layers).map(([folder, allowed]) => ({
  files: [`src/${folder}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: all
          .filter((other) => other !== folder && !allowed.includes(other))
          .map((other) => ({
            group: [`../${other}/*`, `../../${other}/*`, `../${other}`, `../../${other}`],
            message: `src/${folder} may not import from src/${other} (docs/architecture.md section 2).`,
          })),
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs'] }, tsconfigRootDir: import.meta.dirname },
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
    },
  },
  { files: ['src/cli/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.mjs', 'test/**/*.ts'], rules: { 'no-console': 'off' } },
  { files: ['**/*.test.ts', 'test/**/*.ts'], rules: { '@typescript-eslint/no-non-null-assertion': 'off' } },
  ...directionRules,
);
