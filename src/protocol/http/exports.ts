// Contract of POST /v1/exports: a daemon asks another daemon (the source, which stores the artifact) to
// prepare a dense view into its derived-view export cache, so that the wire carries only the view's bytes
// (source-side view transport). The answer comes once the export is ready; LOADs with peer mode `export`
// then fetch it.

import { z } from 'zod';

/** POST /v1/exports: the view to prepare (never the identity: that is the canonical artifact). */
export const exportRequest = z
  .object({
    artifactId: z.string().min(1).max(256),
    view: z.record(z.string(), z.unknown()),
    viewId: z.string().min(1).max(256),
    /** How long the source may take (the caller's remaining deadline, ms). */
    timeoutMs: z
      .number()
      .int()
      .positive()
      .max(2 ** 31 - 1),
  })
  .strict();
/** The body of POST /v1/exports. */
export type ExportRequest = z.infer<typeof exportRequest>;

/** The answer of POST /v1/exports: the export is ready to be fetched. */
export interface ExportResponse {
  readonly artifactId: string;
  readonly viewId: string;
  readonly bytes: number;
  /** Monotonic per entry: a new preparation of the same view has a higher generation. */
  readonly generation: number;
  /** True when an export that was already ready (or being prepared) was joined. */
  readonly reused: boolean;
  /** Unix ms at which the export expires unless a fetch refreshes it. */
  readonly expiresAt: number;
}
