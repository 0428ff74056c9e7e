// POST /v1/exports: another daemon asks this one (which stores the artifact) to prepare a dense view into
// its derived-view export cache (source-side view transport). Answers once the export is ready; the
// asking daemon then fetches it with LOADs in peer mode `export`.

import type { FastifyPluginAsync } from 'fastify';
import { tcError } from '../../core/errors.js';
import { parseViewJson } from '../../layout/view.js';
import { exportRequest, type ExportResponse } from '../../protocol/http/exports.js';
import { parseBody } from '../../protocol/http/parse.js';
import type { ExportCache } from '../../store/export-cache.js';
import type { ResolvedView, ViewService } from '../../store/view-service.js';
import { EXPORT_DEVICE } from '../data-plane/load-handler.js';
import { refuseWhileDraining, type Lifecycle } from './lifecycle.js';

/** What the export route uses. */
export interface ExportRoutesOptions {
  readonly views: ViewService;
  readonly exports: ExportCache;
  /** Views being prepared, by `artifactId/viewId`: the export cache's build reads them (see {@link exportBuilder}). */
  readonly preparing: Map<string, ResolvedView>;
  readonly lifecycle: Lifecycle;
}

/** The key of a view in {@link ExportRoutesOptions.preparing}. */
export const preparingKey = (artifactId: string, viewId: string): string => `${artifactId}/${viewId}`;

/** The export route, as a fastify plugin. */
export const exportRoutes: FastifyPluginAsync<ExportRoutesOptions> = (app, { views, exports, preparing, lifecycle }) => {
  app.post('/v1/exports', async (req): Promise<ExportResponse> => {
    refuseWhileDraining(lifecycle);
    const body = parseBody(exportRequest, req.body, 'export request');
    const rv = await views.resolve(body.artifactId, parseViewJson(JSON.stringify(body.view), 'view'), body.viewId);
    if (rv.local === undefined) {
      throw tcError('TC_ERR_NOT_FOUND', `artifact ${body.artifactId} is not stored on this daemon: it cannot derive views of it`, {
        details: { artifactId: body.artifactId },
      });
    }
    const key = { artifactId: body.artifactId, viewId: body.viewId, device: EXPORT_DEVICE };
    const reused = exports.get(key) !== undefined;
    // Only a new preparation builds (and takes the view from the map); a joined or reused one needs none.
    if (!reused) preparing.set(preparingKey(body.artifactId, body.viewId), rv);
    const entry = await exports.prepare(key, rv.program.totalBytes, Date.now() + body.timeoutMs);
    return {
      artifactId: entry.artifactId,
      viewId: entry.viewId,
      bytes: entry.bytes,
      generation: entry.generation,
      reused,
      expiresAt: entry.expiresAt,
    };
  });
  return Promise.resolve();
};

/** Largest buffer of one export segment (Node 20 caps a Buffer at 4 GiB). */
const SEGMENT_BYTES = 1 << 30;

/**
 * The export cache's build: materializes a view being prepared (found in `preparing`) into fresh segments,
 * from this daemon's files.
 */
export function exportBuilder(views: ViewService, preparing: Map<string, ResolvedView>) {
  return async (key: { artifactId: string; viewId: string }, bytes: number, deadline: number): Promise<Buffer[]> => {
    const pk = preparingKey(key.artifactId, key.viewId);
    const rv = preparing.get(pk);
    if (rv === undefined) throw tcError('TC_ERR_INTERNAL', `export ${pk}: no view being prepared`);
    try {
      const segments: Buffer[] = [];
      for (let start = 0; start < bytes; start += SEGMENT_BYTES) {
        const seg = Buffer.allocUnsafeSlow(Math.min(SEGMENT_BYTES, bytes - start));
        await views.materializeRange(rv, start, start + seg.length, seg, deadline);
        segments.push(seg);
      }
      return segments;
    } finally {
      preparing.delete(pk);
    }
  };
}
