// POST /v1/plans: the daemon plans a load in one round trip. It resolves the key, opens the artifact,
// turns the selection (tensors, a view, or a TP rank under a rule set) into a normalized view, compiles its
// program once (cached for the LOADs that follow), and answers with the output layout.

import type { FastifyPluginAsync } from 'fastify';
import type { Catalog } from '../../catalog/catalog.js';
import { tcError } from '../../core/errors.js';
import { validateKey } from '../../core/keys.js';
import type { Selection } from '../../layout/selection.js';
import { selectView } from '../../layout/selection.js';
import { readModelConfig } from '../../layout/tp-layout.js';
import { parseRuleSet } from '../../layout/tp-rules.js';
import { parseViewJson, specOfView } from '../../layout/view.js';
import { planRequest, type PlanRequest, type PlanResponse } from '../../protocol/http/loads.js';
import { parseBody } from '../../protocol/http/parse.js';
import type { ArtifactStore } from '../../store/artifact-store.js';
import type { ViewService } from '../../store/view-service.js';

/** What the plan route uses. */
export interface PlanRoutesOptions {
  readonly catalog: Catalog;
  readonly store: ArtifactStore;
  readonly views: ViewService;
}

/** The selection a plan request names, validated with the same parsers as the CLI's flags. */
export function selectionOfRequest(body: PlanRequest): Selection {
  const tp = body.tp;
  return {
    ...(body.tensors === undefined ? {} : { tensors: body.tensors }),
    ...(body.view === undefined ? {} : { view: parseViewJson(JSON.stringify(body.view), 'view') }),
    ...(tp === undefined
      ? {}
      : {
          tp:
            tp.rules === undefined
              ? { size: tp.size, rank: tp.rank }
              : { size: tp.size, rank: tp.rank, rules: parseRuleSet(tp.rules, 'tp.rules') },
        }),
  };
}

/** The plan route, as a fastify plugin. */
export const planRoutes: FastifyPluginAsync<PlanRoutesOptions> = (app, { catalog, store, views }) => {
  app.post('/v1/plans', async (req): Promise<PlanResponse> => {
    const body = parseBody(planRequest, req.body, 'plan request');
    let artifactId = body.artifactId;
    let key: PlanResponse['key'] = null;
    if (body.key !== undefined) {
      const binding = await catalog.resolveKey(validateKey(body.key));
      if (binding === undefined) throw tcError('TC_ERR_NOT_FOUND', `no key '${body.key}'`, { details: { key: body.key } });
      artifactId = binding.artifactId;
      key = { key: binding.key, version: binding.version };
    }
    const artifact = await store.open(artifactId!);
    const view = await selectView(artifact.index, selectionOfRequest(body), () => {
      if (!artifact.files.includes('config.json'))
        throw tcError('TC_ERR_LAYOUT_CONFIG', `artifact ${artifact.artifactId} has no config.json (needed for TP layouts)`);
      return readModelConfig(artifact.dir);
    });
    const program = views.programs.get(view);
    return {
      artifactId: artifact.artifactId,
      key,
      view: (specOfView(view) as Record<string, unknown> | undefined) ?? null,
      viewId: view.viewId ?? null,
      totalBytes: program.totalBytes,
      tensors: program.tensors,
      metadata: artifact.index.metadata,
      files: artifact.files,
    };
  });
  return Promise.resolve();
};
