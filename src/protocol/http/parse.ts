// Validates a JSON body against a contract's zod schema: both ends of the control API parse through this,
// and violations become TC_ERR_INVALID_ARGUMENT naming the field.

import type { z } from 'zod';
import { tcError } from '../../core/errors.js';

/**
 * Parses `body` with `schema`.
 *
 * @throws TC_ERR_INVALID_ARGUMENT naming every field that does not fit
 * @example const req = parseBody(planRequest, request.body);
 */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown, what = 'request'): z.infer<T> {
  const r = schema.safeParse(body ?? {});
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
    throw tcError('TC_ERR_INVALID_ARGUMENT', `invalid ${what}: ${problems.join('; ')}`);
  }
  return r.data;
}
