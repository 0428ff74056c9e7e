// `tensorcast handshake serve`: a standalone handshake listener (docs/handshake.md) until SIGTERM or SIGINT,
// then it closes the listener and the store and exits 0. Prints `handshake listening on <url> (store <kind>)`
// once it answers.

import type { Command } from 'commander';
import pino from 'pino';
import type { Logger } from '../../../core/logger.js';
import { startHandshakeServer } from '../../../handshake/server/index.js';
import {
  DEFAULT_HANDSHAKE_LISTEN,
  parseHandshakeTtl,
  parseListenAddress,
  parsePositiveBytes,
  readHandshakeTls,
  readTokenFile,
} from '../../../handshake/server/listener-settings.js';
import { openHandshakeStore } from '../../../handshake/store/open-handshake-store.js';

interface HandshakeServeFlags {
  readonly listen?: string;
  readonly tokenFile?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsClientCa?: string;
  readonly catalog?: string;
  readonly handshakeTtl?: string;
  readonly maxPayload?: string;
  readonly maxEngineBytes?: string;
  readonly logLevel?: string;
}

/** Registers `handshake serve`. */
export function registerHandshakeServe(group: Command): void {
  group
    .command('serve')
    .description('run a handshake listener (KV-transfer metadata per rank) until SIGTERM/SIGINT')
    .option('--listen <host:port>', `listen address (env TENSORCAST_HANDSHAKE_LISTEN; default ${DEFAULT_HANDSHAKE_LISTEN})`)
    .option(
      '--token-file <file>',
      'bearer token file (env TENSORCAST_HANDSHAKE_TOKEN or TENSORCAST_HANDSHAKE_TOKEN_FILE); required off loopback',
    )
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'private key of --tls-cert (PEM)')
    .option('--tls-client-ca <file>', 'require client certificates signed by this CA (mTLS)')
    .option('--catalog <url>', 'keep published metadata in redis://... or postgres://... (default: in memory)')
    .option('--handshake-ttl <seconds>', 'a rank not renewed within this time expires (default 60)')
    .option('--max-payload <bytes>', 'cap of one rank payload (default 4MiB)')
    .option('--max-engine-bytes <bytes>', "cap of one engine's payloads together (default 64MiB)")
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (default warn)')
    .action(async (flags: HandshakeServeFlags) => {
      const env = process.env;
      const listen = parseListenAddress(
        flags.listen ?? nonEmpty(env['TENSORCAST_HANDSHAKE_LISTEN']) ?? DEFAULT_HANDSHAKE_LISTEN,
        '--listen',
      );
      const tokenFile = flags.tokenFile ?? nonEmpty(env['TENSORCAST_HANDSHAKE_TOKEN_FILE']);
      const token =
        flags.tokenFile !== undefined
          ? readTokenFile(flags.tokenFile, '--token-file')
          : (nonEmpty(env['TENSORCAST_HANDSHAKE_TOKEN'])?.trim() ??
            (tokenFile === undefined ? undefined : readTokenFile(tokenFile, 'TENSORCAST_HANDSHAKE_TOKEN_FILE')));
      const tls = readHandshakeTls({ cert: flags.tlsCert, key: flags.tlsKey, clientCa: flags.tlsClientCa }, '--tls');
      const ttlMs = flags.handshakeTtl === undefined ? undefined : parseHandshakeTtl(flags.handshakeTtl, '--handshake-ttl');
      const maxPayloadBytes = flags.maxPayload === undefined ? undefined : parsePositiveBytes(flags.maxPayload, '--max-payload');
      const maxEngineBytes =
        flags.maxEngineBytes === undefined ? undefined : parsePositiveBytes(flags.maxEngineBytes, '--max-engine-bytes');
      const log: Logger = pino({ level: flags.logLevel ?? 'warn', base: { component: 'tensorcast-handshake' } }, pino.destination(2));
      const store = await openHandshakeStore(flags.catalog, { log });
      let server;
      try {
        server = await startHandshakeServer({
          ...listen,
          store,
          log,
          ...(token === undefined ? {} : { token }),
          ...(tls === undefined ? {} : { tls }),
          ...(ttlMs === undefined ? {} : { ttlMs }),
          ...(maxPayloadBytes === undefined ? {} : { maxPayloadBytes }),
          ...(maxEngineBytes === undefined ? {} : { maxEngineBytes }),
        });
      } catch (error) {
        await store.close().catch(() => undefined);
        throw error;
      }
      const running = server;
      await new Promise<void>((resolve) => {
        let stopping = false;
        const onSignal = (signal: string): void => {
          if (stopping) {
            process.stderr.write(`tensorcast: second ${signal}, exiting now\n`);
            process.exit(1);
          }
          stopping = true;
          void running
            .close()
            .then(() => store.close())
            .then(resolve, (error: unknown) => {
              process.stderr.write(`tensorcast: error while stopping the handshake listener: ${String(error)}\n`);
              process.exitCode = 1;
              resolve();
            });
        };
        process.once('SIGTERM', () => onSignal('SIGTERM'));
        process.once('SIGINT', () => onSignal('SIGINT'));
        process.stdout.write(`handshake listening on ${running.url} (store ${store.kind})\n`);
      });
    });
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
