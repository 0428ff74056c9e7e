// The daemon's handshake listener (`serve --handshake-listen`): its own port beside the control API, with
// the daemon's catalog as the store when that is Redis or PostgreSQL (several daemons then serve one
// cluster's metadata), else in memory; the daemon's token unless --handshake-token-file names another.

import type { Logger } from '../core/logger.js';
import { startHandshakeServer } from '../handshake/server/index.js';
import { readHandshakeTls, readTokenFile } from '../handshake/server/listener-settings.js';
import { openHandshakeStore } from '../handshake/store/open-handshake-store.js';
import type { DaemonConfig } from './config.js';

/** A running daemon handshake listener. */
export interface DaemonHandshake {
  readonly url: string;
  readonly storeKind: string;
  /** Closes the listener, then its store. */
  close(): Promise<void>;
}

/** True for a catalog URL whose backend can hold handshake metadata for several listeners. */
export function sharedHandshakeCatalog(catalog: string): boolean {
  return /^(rediss?|postgres(ql)?):\/\//i.test(catalog);
}

/**
 * Starts the listener of `config.handshakeListen`.
 *
 * @throws TC_ERR_CONFIG for unreadable token or TLS files; TC_ERR_ADDRESS_IN_USE for a busy port; TC_ERR_BACKEND
 * when the catalog's Redis or PostgreSQL cannot be reached.
 */
export async function startDaemonHandshake(config: DaemonConfig, daemonToken: string, log: Logger): Promise<DaemonHandshake> {
  const listen = config.handshakeListen!;
  const token = config.handshakeTokenFile === undefined ? daemonToken : readTokenFile(config.handshakeTokenFile, '--handshake-token-file');
  const tls = readHandshakeTls(
    { cert: config.handshakeTlsCert, key: config.handshakeTlsKey, clientCa: config.handshakeTlsClientCa },
    '--handshake-tls',
  );
  const hlog = log.child({ component: 'handshake' });
  const store = await openHandshakeStore(sharedHandshakeCatalog(config.catalog) ? config.catalog : undefined, { log: hlog });
  try {
    const server = await startHandshakeServer({
      host: listen.host,
      port: listen.port,
      token,
      ...(tls === undefined ? {} : { tls }),
      store,
      ttlMs: config.handshakeTtlMs,
      log: hlog,
    });
    hlog.info({ url: server.url, store: store.kind }, 'handshake listener ready');
    return {
      url: server.url,
      storeKind: store.kind,
      close: async () => {
        await server.close();
        await store.close();
      },
    };
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
}
