// Contracts of the import routes: POST /v1/imports (a path on the daemon's host), and uploads
// (POST /v1/uploads, PUT /v1/uploads/:id/files/:name, POST /v1/uploads/:id/commit, DELETE /v1/uploads/:id).

import { z } from 'zod';

/** POST /v1/imports. */
export const importRequest = z.object({ path: z.string().min(1).max(4096), key: z.string().min(1).optional() }).strict();
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
}

/** POST /v1/uploads. */
export interface UploadCreated {
  readonly uploadId: string;
}

/** PUT /v1/uploads/:id/files/:name. */
export interface UploadedFile {
  readonly bytes: number;
}
