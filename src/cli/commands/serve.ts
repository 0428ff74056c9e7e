// `tensorcast serve`: runs a store daemon until SIGTERM or SIGINT, then drains and exits 0.

import type { Command } from 'commander';
import { createDaemon } from '../../daemon/create-daemon.js';
import { configFromEnv, resolveConfig, type RawConfig } from '../../daemon/config.js';

interface ServeFlags {
  readonly config?: string;
  readonly dataDir?: string;
  readonly listen?: string;
  readonly dataListen?: string;
  readonly catalog?: string;
  readonly tokenFile?: string;
  readonly memoryBudget?: string;
  readonly stagingBudget?: string;
  readonly importRoot?: string[];
  readonly shmDir?: string;
  readonly shmReserve?: string;
  readonly logLevel?: string;
  readonly replicaAdmission?: string;
  readonly advertise?: string;
  readonly exportBudget?: string;
  readonly exportTtl?: string;
  readonly daemonTtl?: string;
  readonly objectMemory?: string;
  readonly objectSpill?: boolean;
  readonly objectTxnTtl?: string;
  readonly handshakeListen?: string;
  readonly handshakeTtl?: string;
  readonly handshakeTokenFile?: string;
  readonly handshakeTlsCert?: string;
  readonly handshakeTlsKey?: string;
  readonly handshakeTlsClientCa?: string;
  readonly sessionsCold?: string;
  readonly sessionsMeta?: string;
  readonly sessionsHotBudget?: string;
  readonly sessionsLeaseTtl?: string;
}

/** Registers `serve`. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run a store daemon (control API + data plane) until SIGTERM/SIGINT')
    .option('--config <file>', 'JSON config file (overridden by environment, then flags)')
    .option('--data-dir <dir>', 'data directory (default ~/.tensorcast)')
    .option('--listen <host:port>', 'control API address (default 127.0.0.1:7070)')
    .option('--data-listen <host:port>', 'data-plane address (default 127.0.0.1:7071)')
    .option('--catalog <url>', 'catalog URL (default sqlite://<data-dir>/catalog.db)')
    .option('--token-file <file>', 'token file (default <data-dir>/token, generated with mode 0600 when absent)')
    .option('--memory-budget <bytes>', 'bytes for view replicas in memory and shared memory (e.g. 8GiB; default a quarter of RAM)')
    .option('--staging-budget <bytes>', 'bytes for staging buffers of streamed loads and shm builds (default budget/8, 64MiB-1GiB)')
    .option('--import-root <dir>', 'allow in-place imports from under this directory (repeatable)', (v: string, acc: string[] = []) => [
      ...acc,
      v,
    ])
    .option('--shm-dir <dir>', 'folder on tmpfs for shared-memory hand-off (default /dev/shm/tensorcast-<hash>)')
    .option(
      '--shm-reserve <bytes>',
      'shm pages allocated ahead of need, within the memory budget (default budget/8, at most 1GiB; 0 = none)',
    )
    .option('--replica-admission <when>', 'reuse (a view read a second time gets a memory replica; default) or always')
    .option('--advertise <host>', 'host name or address other daemons reach this one at (default: the listen host)')
    .option('--export-budget <bytes>', 'bytes of derived-view exports prepared for other daemons (default an eighth of RAM)')
    .option('--export-ttl <duration>', 'retire an export not fetched for this long (default 10m)')
    .option('--daemon-ttl <duration>', 'a daemon silent for this long is not routed to; heartbeats every third of it (default 30s)')
    .option('--object-memory <bytes>', 'bytes of objects held in memory and shared memory (default: the memory budget)')
    .option('--object-spill', 'objects that do not fit in memory go to <data-dir>/objects, journaled across restarts')
    .option('--object-txn-ttl <duration>', 'abort an object transaction unused for this long and free its bytes (default 60s)')
    .option('--handshake-listen <host:port>', 'also run a handshake listener (KV-transfer metadata) on this address (docs/handshake.md)')
    .option('--handshake-ttl <seconds>', 'handshake ranks not renewed within this time expire (default 60)')
    .option('--handshake-token-file <file>', "the handshake listener's token (default: the daemon's token)")
    .option('--handshake-tls-cert <file>', 'serve the handshake listener over HTTPS with this certificate (PEM)')
    .option('--handshake-tls-key <file>', 'private key of --handshake-tls-cert (PEM)')
    .option('--handshake-tls-client-ca <file>', 'handshake clients must present a certificate signed by this CA (mTLS)')
    .option(
      '--sessions-cold <url>',
      'enable the session KV cache with this cold tier (file:///dir, redis://host:port/prefix, s3://bucket/prefix)',
    )
    .option(
      '--sessions-meta <url>',
      'session metadata: memory, sqlite:///path, redis://... or postgres://... (default sqlite://<data-dir>/sessions.db)',
    )
    .option('--sessions-hot-budget <bytes>', 'bytes of session KV held in memory (default a quarter of the memory budget)')
    .option(
      '--sessions-lease-ttl <duration>',
      "a session writer's lease lasts this long if its holder dies (e.g. 30s or 5000 for ms; default 30s)",
    )
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (default info)')
    .action(async (flags: ServeFlags) => {
      const fromFlags: RawConfig = {
        config: flags.config,
        dataDir: flags.dataDir,
        listen: flags.listen,
        dataListen: flags.dataListen,
        catalog: flags.catalog,
        tokenFile: flags.tokenFile,
        memoryBudget: flags.memoryBudget,
        stagingBudget: flags.stagingBudget,
        importRoots: flags.importRoot,
        shmDir: flags.shmDir,
        shmReserve: flags.shmReserve,
        logLevel: flags.logLevel,
        replicaAdmission: flags.replicaAdmission,
        advertise: flags.advertise,
        exportBudget: flags.exportBudget,
        exportTtlMs: flags.exportTtl,
        daemonTtlMs: flags.daemonTtl,
        objectMemory: flags.objectMemory,
        objectSpill: flags.objectSpill,
        objectTxnTtlMs: flags.objectTxnTtl,
        handshakeListen: flags.handshakeListen,
        handshakeTtlMs: flags.handshakeTtl,
        handshakeTokenFile: flags.handshakeTokenFile,
        handshakeTlsCert: flags.handshakeTlsCert,
        handshakeTlsKey: flags.handshakeTlsKey,
        handshakeTlsClientCa: flags.handshakeTlsClientCa,
        sessionsCold: flags.sessionsCold,
        sessionsMeta: flags.sessionsMeta,
        sessionsHotBudget: flags.sessionsHotBudget,
        sessionsLeaseTtlMs: flags.sessionsLeaseTtl,
      };
      const env = configFromEnv(process.env);
      // A config file named by flag is read below the environment too: file < env < flags.
      const config = resolveConfig(
        flags.config === undefined ? [env, fromFlags] : [{ config: flags.config }, env, { ...fromFlags, config: undefined }],
      );
      const daemon = createDaemon(config);
      const addresses = await daemon.start();
      await new Promise<void>((resolve) => {
        let stopping = false;
        const onSignal = (signal: string): void => {
          if (stopping) {
            process.stderr.write(`tensorcast: second ${signal}, exiting now\n`);
            process.exit(1);
          }
          stopping = true;
          void daemon.stop().then(resolve, (error: unknown) => {
            process.stderr.write(`tensorcast: error while stopping: ${String(error)}\n`);
            process.exitCode = 1;
            resolve();
          });
        };
        process.once('SIGTERM', () => onSignal('SIGTERM'));
        process.once('SIGINT', () => onSignal('SIGINT'));
        // Ready only once a signal stops the daemon cleanly: one sent at once on seeing this line would
        // otherwise kill it, leaving its shm folder (and reserve) behind.
        process.stdout.write(
          `tensorcast ready ${addresses.controlUrl} data ${addresses.dataAddress} daemon ${addresses.daemonId} token-file ${config.token === undefined ? config.tokenFile : '(TENSORCAST_TOKEN)'}${addresses.handshakeUrl === undefined ? '' : ` handshake ${addresses.handshakeUrl}`}\n`,
        );
      });
    });
}
