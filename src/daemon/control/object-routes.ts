// The object routes (docs/api.md, "Objects"): GET /v1/objects (list), GET /v1/objects/stat,
// POST /v1/objects/delete, POST /v1/objects/commit, POST /v1/objects/abort, PUT/GET /v1/namespaces/:ns,
// GET /v1/namespaces, and the same-host hand-off: POST /v1/objects/shm-puts, POST
// /v1/objects/shm-puts/:putId/commit, DELETE /v1/objects/shm-puts/:putId, POST /v1/objects/shm-gets, DELETE
// /v1/objects/shm-gets/:leaseId. A namespace's store token comes in the x-tensorcast-store-token header.
// (Object bytes over TCP go through the data plane: PUT and GET frames.)

import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { tcError } from '../../core/errors.js';
import { checkNamespace, parseObjectKey } from '../../core/object-keys.js';
import {
  abortRequest,
  commitRequest,
  deleteObjectsRequest,
  listObjectsQuery,
  namespaceRequest,
  shmGetRequest,
  shmPutCommitRequest,
  shmPutRequest,
  STORE_TOKEN_HEADER,
  type CommitResponse,
  type DeleteObjectsResponse,
  type NamespaceInfo,
  type NamespaceList,
  type ObjectList,
  type ObjectMeta,
  type ShmGetResponse,
  type ShmPutCommitResponse,
  type ShmPutResponse,
} from '../../protocol/http/objects.js';
import { parseBody } from '../../protocol/http/parse.js';
import type { ObjectStoreApi } from '../../store/objects/object-store-api.js';
import type { ObjectShmHandoff } from '../objects/shm-handoff.js';
import { refuseWhileDraining, type Lifecycle } from './lifecycle.js';

/** A list page without `limit`. */
const DEFAULT_LIST_LIMIT = 1000;

/** What the object routes use. */
export interface ObjectRoutesOptions {
  readonly objects: ObjectStoreApi;
  readonly handoff: ObjectShmHandoff;
  readonly lifecycle: Lifecycle;
}

/** The store token a request presents, if any. */
export function storeTokenOf(req: FastifyRequest): string | undefined {
  const h = req.headers[STORE_TOKEN_HEADER];
  const v = Array.isArray(h) ? h[0] : h;
  return v === undefined || v === '' ? undefined : v;
}

/** The object and namespace routes, as a fastify plugin. */
export const objectRoutes: FastifyPluginAsync<ObjectRoutesOptions> = (app, { objects, handoff, lifecycle }) => {
  app.get('/v1/objects', (req): ObjectList => {
    const q = parseBody(listObjectsQuery, req.query, 'query');
    return objects.list(q.prefix ?? '', {
      ...(q.after === undefined ? {} : { after: q.after }),
      limit: q.limit ?? DEFAULT_LIST_LIMIT,
      storeToken: storeTokenOf(req),
    });
  });
  app.get<{ Querystring: { key?: string } }>('/v1/objects/stat', (req): ObjectMeta => {
    const key = req.query.key;
    if (typeof key !== 'string') throw tcError('TC_ERR_INVALID_ARGUMENT', 'give the object key as ?key=');
    parseObjectKey(key);
    return objects.stat(key, storeTokenOf(req));
  });
  app.post('/v1/objects/delete', (req): DeleteObjectsResponse => {
    const body = parseBody(deleteObjectsRequest, req.body);
    return { results: objects.delete(body.keys, storeTokenOf(req)) };
  });
  app.post('/v1/objects/commit', (req): CommitResponse => {
    refuseWhileDraining(lifecycle);
    const body = parseBody(commitRequest, req.body);
    for (const c of body.conditions) parseObjectKey(c.key);
    return { versions: objects.commitTxn(body.txn, body.conditions, storeTokenOf(req)) };
  });
  app.post('/v1/objects/abort', (req) => {
    objects.abortTxn(parseBody(abortRequest, req.body).txn);
    return { aborted: true };
  });
  app.put<{ Params: { ns: string } }>('/v1/namespaces/:ns', (req): NamespaceInfo => {
    const ns = checkNamespace(req.params.ns);
    const body = parseBody(namespaceRequest, req.body);
    return objects.configureNamespace(
      ns,
      { ...(body.token === undefined ? {} : { token: body.token }), ...(body.maxBytes === undefined ? {} : { maxBytes: body.maxBytes }) },
      storeTokenOf(req),
    );
  });
  app.get<{ Params: { ns: string } }>('/v1/namespaces/:ns', (req): NamespaceInfo =>
    objects.namespaceInfo(checkNamespace(req.params.ns), storeTokenOf(req)),
  );
  app.get('/v1/namespaces', (): NamespaceList => ({ namespaces: objects.namespaces() }));

  app.post('/v1/objects/shm-puts', async (req): Promise<ShmPutResponse> => {
    refuseWhileDraining(lifecycle);
    const body = parseBody(shmPutRequest, req.body);
    parseObjectKey(body.key);
    return handoff.beginPut(body, storeTokenOf(req));
  });
  app.post<{ Params: { putId: string } }>('/v1/objects/shm-puts/:putId/commit', (req): Promise<ShmPutCommitResponse> => {
    const body = parseBody(shmPutCommitRequest, req.body);
    return handoff.commitPut(req.params.putId, body.crc);
  });
  app.delete<{ Params: { putId: string } }>('/v1/objects/shm-puts/:putId', (req) => {
    handoff.abortPut(req.params.putId);
    return { aborted: true };
  });
  app.post('/v1/objects/shm-gets', async (req): Promise<ShmGetResponse> => {
    const body = parseBody(shmGetRequest, req.body);
    parseObjectKey(body.key);
    return handoff.openGet(body.key, body.expectBytes, storeTokenOf(req));
  });
  app.delete<{ Params: { leaseId: string } }>('/v1/objects/shm-gets/:leaseId', (req) => {
    handoff.releaseGet(req.params.leaseId);
    return { released: true };
  });
  return Promise.resolve();
};
