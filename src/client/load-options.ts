// Run-time checks of what JavaScript callers pass to load(): TypeScript types vanish at run time, so a
// misspelt option (`{ tpSize: 2 }`) or an unknown transport (`'udp'`) must fail with a coded error instead of
// silently loading something else.

import { z } from 'zod';
import { tcError } from '../core/errors.js';
import { ROUTE_CHOICES } from '../protocol/route-kinds.js';

/** The transports a load can use. */
export const TRANSPORTS = ['tcp', 'shm', 'files'] as const;

const selectionShape = {
  tensors: z.array(z.string()).optional(),
  view: z.record(z.string(), z.unknown()).optional(),
  tp: z
    .object({
      size: z.number().int().positive(),
      rank: z.number().int().nonnegative(),
      rules: z.object({ name: z.string(), rules: z.array(z.unknown()) }).optional(),
    })
    .strict()
    .optional(),
};

const transferShape = {
  transport: z.enum(TRANSPORTS).optional(),
  timeoutMs: z.number().int().positive().optional(),
  connections: z.number().int().positive().max(64).optional(),
  route: z.enum(ROUTE_CHOICES).optional(),
  readTimeoutMs: z
    .number()
    .int()
    .positive()
    .max(2 ** 31 - 1)
    .optional(),
};

const loadOptionsSchema = z
  .object({
    ...selectionShape,
    ...transferShape,
    deadlineMs: z.number().int().positive().optional(),
    into: z.instanceof(Uint8Array).optional(),
  })
  .strict();
const weightsSchema = z
  .object({
    ...selectionShape,
    ...transferShape,
    maxInFlightBytes: z.number().int().positive().optional(),
  })
  .strict();
const selectionSchema = z.object(selectionShape).strict();
const transferSchema = z.object(transferShape).strict();

function check(schema: z.ZodType, value: unknown, what: string): void {
  const r = schema.safeParse(value ?? {});
  if (r.success) return;
  const problems = r.error.issues.map((i) =>
    i.code === 'unrecognized_keys'
      ? `unknown option ${i.keys.map((k) => `'${k}'`).join(', ')}`
      : `${i.path.join('.') || what}: ${i.message}`,
  );
  throw tcError('TC_ERR_INVALID_ARGUMENT', `invalid ${what}: ${problems.join('; ')}`);
}

/** Checks load() options. @throws TC_ERR_INVALID_ARGUMENT naming the unknown or ill-typed option */
export function checkLoadOptions(options: unknown): void {
  check(loadOptionsSchema, options, 'load options');
}

/** Checks a selection (plan()). @throws TC_ERR_INVALID_ARGUMENT */
export function checkSelection(selection: unknown): void {
  check(selectionSchema, selection, 'selection');
}

/** Checks openTransfer() options. @throws TC_ERR_INVALID_ARGUMENT */
export function checkTransferOptions(options: unknown): void {
  check(transferSchema, options, 'transfer options');
}

/** Checks weights() options. @throws TC_ERR_INVALID_ARGUMENT */
export function checkWeightsOptions(options: unknown): void {
  check(weightsSchema, options, 'weights options');
}
