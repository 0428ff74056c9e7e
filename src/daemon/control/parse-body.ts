// Validates a JSON request body with a zod schema; violations become TC_ERR_INVALID_ARGUMENT naming the field.

import type { z } from 'zod';
import { tcError } from '../../core/errors.js';

/** Parses `body` with `schema`. @throws TC_ERR_INVALID_ARGUMENT */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
    throw tcError('TC_ERR_INVALID_ARGUMENT', `invalid request: ${problems.join('; ')}`);
  }
  return r.data;
}
