// Writes python/tensorcast/error_codes.json from the built TypeScript catalogue (dist/src/core/error-codes.js):
// run after adding an error code (`npm run build` first). test/python/error-codes.test.ts checks they agree.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** @type {{ ERROR_CODES: Record<string, unknown> }} */
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- a built module, untyped here
const catalogue = await import(join(root, 'dist', 'src', 'core', 'error-codes.js'));
writeFileSync(join(root, 'python', 'tensorcast', 'error_codes.json'), JSON.stringify(catalogue.ERROR_CODES, null, 2) + '\n');
