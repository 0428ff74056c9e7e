// POST /v1/plans: the daemon plans a load in one round trip. It resolves the key, opens the artifact,
// turns the selection (tensors, a view, or a TP rank under a rule set) into a normalized view, compiles its
// program once (cached for the LOADs that follow), and answers with the output layout.

import type { FastifyPluginAsync } from 'fastify';
import type { Catalog, KeyBinding } from '../../catalog/catalog.js';
import { isTensorcastError } from '../../core/errors.js';
import { tcError } from '../../core/errors.js';
import { validateKey } from '../../core/keys.js';
import type { Selection } from '../../layout/selection.js';
import { selectView } from '../../layout/selection.js';
import { parseModelConfig, readModelConfig } from '../../layout/tp-layout.js';
import { parseRuleSet } from '../../layout/tp-rules.js';
import { parseViewJson, specOfView } from '../../layout/view.js';
import { planRequest, type PlanRequest, type PlanResponse } from '../../protocol/http/loads.js';
import { parseBody } from '../../protocol/http/parse.js';
import type { ViewService } from '../../store/view-service.js';

/** What the plan route uses. */
export interface PlanRoutesOptions {
  readonly catalog: Catalog;
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
export const planRoutes: FastifyPluginAsync<PlanRoutesOptions> = (app, { catalog, views }) => {
  // The last binding seen per key: loads of keys go on while the catalog is unavailable.
  const lastBindings = new Map<string, KeyBinding>();
  app.post('/v1/plans', async (req): Promise<PlanResponse> => {
    const body = parseBody(planRequest, req.body, 'plan request');
    let artifactId = body.artifactId;
    let key: PlanResponse['key'] = null;
    if (body.key !== undefined) {
      const binding = await resolveKey(catalog, validateKey(body.key), lastBindings);
      if (binding === undefined) throw tcError('TC_ERR_NOT_FOUND', `no key '${body.key}'`, { details: { key: body.key } });
      artifactId = binding.artifactId;
      key = { key: binding.key, version: binding.version };
    }
    const { artifact, local } = await views.artifact(artifactId!);
    const view = await selectView(artifact.index, selectionOfRequest(body), async () => {
      if (!artifact.files.includes('config.json'))
        throw tcError('TC_ERR_LAYOUT_CONFIG', `artifact ${artifact.artifactId} has no config.json (needed for TP layouts)`);
      return local !== undefined ? readModelConfig(local.dir) : parseModelConfig(await views.file(artifact.artifactId, 'config.json'));
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

/** Most keys remembered for catalog outages. */
const MAX_REMEMBERED_KEYS = 4096;

/**
 * Resolves a key in the catalog, remembering the answer; when the catalog is unavailable (TC_ERR_BACKEND),
 * answers with the last binding seen, so local loads keep working through an outage.
 */
async function resolveKey(catalog: Catalog, key: string, last: Map<string, KeyBinding>): Promise<KeyBinding | undefined> {
  try {
    const binding = await catalog.resolveKey(key);
    last.delete(key);
    if (binding !== undefined) {
      if (last.size >= MAX_REMEMBERED_KEYS) last.delete(last.keys().next().value!);
      last.set(key, binding);
    }
    return binding;
  } catch (error) {
    const known = last.get(key);
    if (known !== undefined && isTensorcastError(error, 'TC_ERR_BACKEND')) return known;
    throw error;
  }
}
