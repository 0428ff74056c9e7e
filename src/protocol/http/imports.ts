// Contracts of the import routes: POST /v1/imports (a path on the daemon's host, or a connector URL the
// daemon pulls from or registers lazily), and uploads (POST /v1/uploads, PUT /v1/uploads/:id/files/:name,
// POST /v1/uploads/:id/commit, DELETE /v1/uploads/:id).

import { z } from 'zod';
import { connectorTuningFields } from './connector-tuning.js';

/**
 * POST /v1/imports: exactly one of `path` (a model on the daemon's host, under an import root) and `url` (a
 * connector URL: file://, redis://, rediss://, s3://); `lazy` (with `url` only) registers the artifact
 * from its headers and reads its bytes from the connector when loaded. With `accept: application/x-ndjson`
 * a URL import answers a progress stream (progress.ts) ending in the ImportResponse. `chunkBytes` and
 * `concurrency` (with `url` only) tune the connector the daemon opens (connector-tuning.ts).
 */
export const importRequest = z
  .object({
    path: z.string().min(1).max(4096).optional(),
    url: z.string().min(1).max(8192).optional(),
    key: z.string().min(1).optional(),
    lazy: z.boolean().optional(),
    ...connectorTuningFields,
  })
  .strict()
  .refine((b) => (b.path === undefined) !== (b.url === undefined), { message: 'give exactly one of path and url' })
  .refine((b) => b.lazy !== true || b.url !== undefined, { message: 'lazy needs a url' })
  .refine((b) => b.url !== undefined || (b.chunkBytes === undefined && b.concurrency === undefined), {
    message: 'chunkBytes and concurrency need a url',
  });
/** The body of POST /v1/imports. */
export type ImportRequest = z.infer<typeof importRequest>;

/** POST /v1/uploads/:id/commit. */
export const commitRequest = z.object({ key: z.string().min(1).optional() }).strict();
/** The body of POST /v1/uploads/:id/commit. */
export type CommitRequest = z.infer<typeof commitRequest>;

/** What an import or an upload commit answers. */
export interface ImportResponse {
  readonly artifactId: string;
  /** False when identical bytes were already stored (nothing was added). */
  readonly created: boolean;
  readonly totalBytes: number;
  readonly tensorCount: number;
  readonly key?: { readonly key: string; readonly version: number };
  /** URL imports: true for a lazy artifact (its bytes stay in the connector). */
  readonly lazy?: boolean;
  /** URL imports: the connector URL, credentials redacted. */
  readonly source?: string;
}

/** POST /v1/uploads. */
export interface UploadCreated {
  readonly uploadId: string;
}

/** PUT /v1/uploads/:id/files/:name. */
export interface UploadedFile {
  readonly bytes: number;
}
