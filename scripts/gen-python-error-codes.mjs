// Writes python/tensorcast/error_codes.json from the built TypeScript catalogue (dist/src/core/error-codes.js):
// run after adding an error code (`npm run build` first). test/python/error-codes.test.ts checks they agree.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { ERROR_CODES } = await import(join(root, 'dist', 'src', 'core', 'error-codes.js'));
writeFileSync(join(root, 'python', 'tensorcast', 'error_codes.json'), JSON.stringify(ERROR_CODES, null, 2) + '\n');
