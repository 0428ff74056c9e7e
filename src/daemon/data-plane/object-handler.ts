// The data plane's ObjectHandler on the daemon's object store: a PUT frame becomes a store put (placement
// default: memory, or disk when spilling), a GET frame a fenced read lease. The store's PendingPut and
// ReadLease already have the shapes the transport asks for.

import type {
  ObjectGetRequest,
  ObjectHandler,
  ObjectPutRequest,
  ObjectPutSession,
  ObjectReadSession,
} from '../../transport/data-server.js';
import type { ObjectStoreApi } from '../../store/objects/object-store-api.js';

/**
 * The object handler the data server serves PUT and GET with.
 *
 * @example new DataServer({ ..., objects: objectHandler(store) });
 */
export function objectHandler(store: ObjectStoreApi): ObjectHandler {
  return {
    beginPut: (r: ObjectPutRequest): Promise<ObjectPutSession> =>
      store.beginPut({
        key: r.key,
        size: r.size,
        storeToken: r.storeToken,
        crc: r.crc,
        txn: r.txn,
        ifVersion: r.ifVersion,
        ttlMs: r.ttlMs,
        waitForRoom: r.waitForRoom,
        deadline: r.deadline,
      }),
    openRead: (r: ObjectGetRequest): ObjectReadSession => store.openRead(r.key, r.storeToken, r.deadline),
  };
}
