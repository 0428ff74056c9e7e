// Contracts of the key routes: GET /v1/keys, GET/PUT/DELETE /v1/keys/:key.

import { z } from 'zod';

/** A key bound to an artifact; every rebinding increments the version. */
export interface KeyBindingInfo {
  readonly key: string;
  readonly artifactId: string;
  readonly version: number;
  readonly updatedAt: number;
}

/** PUT /v1/keys/:key: bind (expectedVersion null or absent: create only when absent, or compare-and-swap). */
export const bindKeyRequest = z
  .object({ artifactId: z.string().min(1).max(256), expectedVersion: z.number().int().positive().nullable().optional() })
  .strict();
/** The body of PUT /v1/keys/:key. */
export type BindKeyRequest = z.infer<typeof bindKeyRequest>;

/** GET /v1/keys. */
export interface KeyList {
  readonly keys: readonly KeyBindingInfo[];
}

/** The path of a key's route (keys are URL-encoded). */
export const keyPath = (key: string): string => `/v1/keys/${encodeURIComponent(key)}`;
