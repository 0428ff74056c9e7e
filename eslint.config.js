// Lint: typescript-eslint type-checked rules, plus the import direction of docs/architecture.md section 2
// (scripts/eslint/layers.mjs resolves every relative import in src/ and checks the folder it lands in).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { join } from 'node:path';
import { layersPlugin } from './scripts/eslint/layers.mjs';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', 'scripts/*.mjs', 'scripts/eslint/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
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
  // The lint rule itself is plain JavaScript over ESLint's untyped AST.
  { files: ['scripts/eslint/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['src/**/*.ts'],
    plugins: { tensorcast: layersPlugin(join(import.meta.dirname, 'src')) },
    rules: { 'tensorcast/layers': 'error' },
  },
);
