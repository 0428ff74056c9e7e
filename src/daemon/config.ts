// Daemon configuration: defaults < config file (JSON) < environment < command-line flags, validated in one
// pass so that every violation is reported at start, not only the first.

import { readFileSync } from 'node:fs';
import { homedir, hostname, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { parseByteSize, parseDuration } from '../core/strings.js';
import { z } from 'zod';
import { tcError } from '../core/errors.js';
import { isLoopbackHost } from '../core/net.js';
import { defaultShmReserveBytes, defaultStagingBytes } from '../store/view-service.js';
import { parseHandshakeTtl } from '../handshake/server/listener-settings.js';

/** A validated daemon configuration. */
export interface DaemonConfig {
  readonly dataDir: string;
  /** Control API listen address. */
  readonly listen: HostPort;
  /** Data-plane listen address. */
  readonly dataListen: HostPort;
  readonly catalog: string;
  readonly tokenFile: string;
  /** An explicit token (TENSORCAST_TOKEN or the config file); otherwise the token file is read or created. */
  readonly token: string | undefined;
  readonly memoryBudget: number;
  /** Bound of the staging buffers that stream uncached ranges and write shm replicas (outside memoryBudget). */
  readonly stagingBudget: number;
  readonly importRoots: readonly string[];
  /** Folder on tmpfs for shared-memory hand-off. */
  readonly shmDir: string;
  /** Bytes of shm segments allocated ahead of need, within memoryBudget (0: none). */
  readonly shmReserve: number;
  readonly drainTimeoutMs: number;
  readonly leaseTtlMs: number;
  /** When a view earns a memory replica: 'reuse' (on its second read) or 'always' (first read). */
  readonly replicaAdmission: 'reuse' | 'always';
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Control API: a connection must send complete request headers within this time (idle sockets, slowloris). */
  readonly httpHeadersTimeoutMs: number;
  /**
   * Control API: a connection on which no byte moves for this long is closed, unless the daemon is still
   * working on its answer; a stalled upload is aborted and its staging removed.
   */
  readonly httpIdleTimeoutMs: number;
  /** Control API: an idle keep-alive connection between requests is closed after this time. */
  readonly httpKeepAliveTimeoutMs: number;
  /** Control API: the whole of one request (uploads included) must arrive within this time; 0 = no limit. */
  readonly httpRequestTimeoutMs: number;
  /** Control API: most connections open at once; more are refused until some close. */
  readonly httpMaxConnections: number;
  /**
   * The host other daemons reach this one at (--advertise); default: the listen host, or this machine's
   * host name when listening on a wildcard address.
   */
  readonly advertise: string;
  /** Bytes of derived-view exports this daemon prepares for other daemons (outside memoryBudget). */
  readonly exportBudget: number;
  /** An export not fetched for this long is retired (ms). */
  readonly exportTtlMs: number;
  /** A daemon that misses heartbeats for this long is not routed to (ms); heartbeats go every third of it. */
  readonly daemonTtlMs: number;
  /** Bytes of objects (docs/api.md, "Objects") held in memory and shared memory; separate from memoryBudget. */
  readonly objectMemory: number;
  /**
   * Objects that do not fit in objectMemory go to disk under `<dataDir>/objects/`, and a journal there makes
   * committed objects known across restarts.
   */
  readonly objectSpill: boolean;
  /** An object transaction unused for this long is aborted and its bytes freed (ms); see docs/api.md, "Objects". */
  readonly objectTxnTtlMs: number;
  /** Run a handshake listener (docs/handshake.md) on this address, beside the control API; undefined: none. */
  readonly handshakeListen: HostPort | undefined;
  /** A published rank not renewed within this time expires (ms). */
  readonly handshakeTtlMs: number;
  /** The handshake listener's bearer token file; undefined: the daemon's own token. */
  readonly handshakeTokenFile: string | undefined;
  /** PEM files of the handshake listener's TLS (certificate, key, and the CA client certificates must be signed by). */
  readonly handshakeTlsCert: string | undefined;
  readonly handshakeTlsKey: string | undefined;
  readonly handshakeTlsClientCa: string | undefined;
  /**
   * The session KV cache's cold tier (docs/sessions.md): a connector URL (file://, redis://, s3://). Sessions
   * are enabled only when it is set (--sessions-cold).
   */
  readonly sessionsCold: string | undefined;
  /** The sessions' metadata store: memory, sqlite://, redis://, postgres:// (default sqlite://<dataDir>/sessions.db). */
  readonly sessionsMeta: string;
  /** Bytes of the sessions' hot tier (memory, outside memoryBudget; default a quarter of memoryBudget). */
  readonly sessionsHotBudget: number;
  /** A session writer's lease lasts this long unless renewed (ms). */
  readonly sessionsLeaseTtlMs: number;
}

/** A listen address. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Raw settings as they come from a file, the environment or flags (strings or numbers). */
export type RawConfig = Partial<Record<keyof DaemonConfig | 'config', unknown>>;

const hostPort = z.string().transform((s, ctx): HostPort => {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `expected HOST:PORT, got '${s}'` });
    return z.NEVER;
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
});

const byteSize = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = parseByteSize(v);
  if (n === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a byte size like 8GiB or 512MB, got '${String(v)}'` });
    return z.NEVER;
  }
  return n;
});

const positiveMs = z.coerce.number().int().positive();

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = parseDuration(v);
  if (n === undefined || n <= 0) {
    ctx.addIssue({ code: 'custom', message: `expected a duration like 10m, 30s or 500ms, got '${String(v)}'` });
    return z.NEVER;
  }
  return n;
});
const nonNegativeMs = z.coerce.number().int().nonnegative();

/** The handshake TTL: bare numbers are seconds (`60`, `0.5`), or a duration with its unit (`500ms`). */
const handshakeTtl = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseHandshakeTtl(v, 'handshakeTtlMs');
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message.replace(/^handshakeTtlMs: /, '') });
    return z.NEVER;
  }
});

/** true/false, also as the strings an environment variable or a flag gives (1/0, yes/no, on/off). */
const flag = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  const s = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off'].includes(s)) return false;
  ctx.addIssue({ code: 'custom', message: `expected true or false, got '${v}'` });
  return z.NEVER;
});

const schema = z
  .object({
    dataDir: z.string().min(1),
    listen: hostPort,
    dataListen: hostPort,
    catalog: z
      .string()
      .regex(/^[a-z][a-z0-9+.-]*:\/\//, 'expected a URL like sqlite:///path/catalog.db')
      .optional(),
    tokenFile: z.string().min(1).optional(),
    token: z.string().min(16, 'a token needs at least 16 characters').optional(),
    memoryBudget: byteSize,
    stagingBudget: byteSize.pipe(z.number().min(1 << 20, 'the staging budget needs at least 1MiB')).optional(),
    importRoots: z.array(z.string().min(1)),
    shmDir: z.string().min(1).optional(),
    shmReserve: byteSize.optional(),
    drainTimeoutMs: positiveMs,
    leaseTtlMs: positiveMs,
    replicaAdmission: z.enum(['reuse', 'always']),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    httpHeadersTimeoutMs: positiveMs,
    httpIdleTimeoutMs: positiveMs,
    httpKeepAliveTimeoutMs: positiveMs,
    httpRequestTimeoutMs: nonNegativeMs,
    httpMaxConnections: z.coerce.number().int().positive(),
    advertise: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[A-Za-z0-9.:\-[\]]+$/, 'expected a host name or address')
      .optional(),
    exportBudget: byteSize,
    exportTtlMs: duration,
    daemonTtlMs: duration.pipe(z.number().min(1000, 'the daemon TTL needs at least 1s')),
    objectMemory: byteSize.optional(),
    objectSpill: flag,
    objectTxnTtlMs: duration,
    handshakeListen: hostPort.optional(),
    handshakeTtlMs: handshakeTtl,
    handshakeTokenFile: z.string().min(1).optional(),
    handshakeTlsCert: z.string().min(1).optional(),
    handshakeTlsKey: z.string().min(1).optional(),
    handshakeTlsClientCa: z.string().min(1).optional(),
    sessionsCold: z
      .string()
      .regex(/^(file|redis|rediss|s3):\/\//, 'expected a connector URL like file:///var/kv, redis://host:6379/kv or s3://bucket/kv')
      .optional(),
    sessionsMeta: z
      .string()
      .regex(
        /^(memory(:\/\/)?$|sqlite:\/\/|redis:\/\/|rediss:\/\/|postgres:\/\/|postgresql:\/\/)/,
        'expected memory, sqlite:///path/sessions.db, redis://... or postgres://...',
      )
      .optional(),
    sessionsHotBudget: byteSize.optional(),
    sessionsLeaseTtlMs: duration,
  })
  .strict();

/** Built-in defaults. */
export function defaultConfig(): RawConfig {
  return {
    dataDir: join(homedir(), '.tensorcast'),
    listen: '127.0.0.1:7070',
    dataListen: '127.0.0.1:7071',
    memoryBudget: Math.floor(totalmem() / 4),
    importRoots: [],
    drainTimeoutMs: 10_000,
    leaseTtlMs: 60_000,
    replicaAdmission: 'reuse',
    logLevel: 'info',
    httpHeadersTimeoutMs: 30_000,
    httpIdleTimeoutMs: 60_000,
    httpKeepAliveTimeoutMs: 10_000,
    httpRequestTimeoutMs: 24 * 3600_000,
    httpMaxConnections: 256,
    exportBudget: Math.floor(totalmem() / 8),
    exportTtlMs: '10m',
    daemonTtlMs: '30s',
    objectSpill: false,
    objectTxnTtlMs: '60s',
    handshakeTtlMs: '60',
    sessionsLeaseTtlMs: '30s',
  };
}

const ENV: Record<string, keyof DaemonConfig> = {
  TENSORCAST_DATA_DIR: 'dataDir',
  TENSORCAST_LISTEN: 'listen',
  TENSORCAST_DATA_LISTEN: 'dataListen',
  TENSORCAST_CATALOG: 'catalog',
  TENSORCAST_TOKEN_FILE: 'tokenFile',
  TENSORCAST_TOKEN: 'token',
  TENSORCAST_MEMORY_BUDGET: 'memoryBudget',
  TENSORCAST_STAGING_BUDGET: 'stagingBudget',
  TENSORCAST_SHM_DIR: 'shmDir',
  TENSORCAST_SHM_RESERVE: 'shmReserve',
  TENSORCAST_LOG_LEVEL: 'logLevel',
  TENSORCAST_REPLICA_ADMISSION: 'replicaAdmission',
  TENSORCAST_HTTP_HEADERS_TIMEOUT_MS: 'httpHeadersTimeoutMs',
  TENSORCAST_HTTP_IDLE_TIMEOUT_MS: 'httpIdleTimeoutMs',
  TENSORCAST_HTTP_KEEP_ALIVE_TIMEOUT_MS: 'httpKeepAliveTimeoutMs',
  TENSORCAST_HTTP_REQUEST_TIMEOUT_MS: 'httpRequestTimeoutMs',
  TENSORCAST_HTTP_MAX_CONNECTIONS: 'httpMaxConnections',
  TENSORCAST_ADVERTISE: 'advertise',
  TENSORCAST_EXPORT_BUDGET: 'exportBudget',
  TENSORCAST_EXPORT_TTL: 'exportTtlMs',
  TENSORCAST_DAEMON_TTL: 'daemonTtlMs',
  TENSORCAST_OBJECT_MEMORY: 'objectMemory',
  TENSORCAST_OBJECT_SPILL: 'objectSpill',
  TENSORCAST_OBJECT_TXN_TTL: 'objectTxnTtlMs',
  TENSORCAST_HANDSHAKE_LISTEN: 'handshakeListen',
  TENSORCAST_HANDSHAKE_TTL: 'handshakeTtlMs',
  TENSORCAST_SESSIONS_COLD: 'sessionsCold',
  TENSORCAST_SESSIONS_META: 'sessionsMeta',
  TENSORCAST_SESSIONS_HOT_BUDGET: 'sessionsHotBudget',
  TENSORCAST_SESSIONS_LEASE_TTL: 'sessionsLeaseTtlMs',
  // Hidden (no flag): the shm lease TTL in ms, shortened by tests of lease renewal (default 60 s).
  TENSORCAST_LEASE_TTL_MS: 'leaseTtlMs',
};

/** Settings from the environment. `TENSORCAST_IMPORT_ROOTS` is a path-delimiter-separated list. */
export function configFromEnv(env: NodeJS.ProcessEnv): RawConfig {
  const out: RawConfig = {};
  for (const [name, key] of Object.entries(ENV)) if (env[name] !== undefined && env[name] !== '') out[key] = env[name];
  if (env['TENSORCAST_IMPORT_ROOTS']) out.importRoots = env['TENSORCAST_IMPORT_ROOTS'].split(':').filter(Boolean);
  return out;
}

/**
 * Merges and validates. `layers` go from lowest to highest precedence; a layer's `config` names a JSON file
 * that is read in its place (below that layer's own settings).
 *
 * @throws TC_ERR_CONFIG listing every violation.
 * @example const config = resolveConfig([configFromEnv(process.env), flags]);
 */
export function resolveConfig(layers: readonly RawConfig[]): DaemonConfig {
  const merged: Record<string, unknown> = { ...defaultConfig() };
  const problems: string[] = [];
  for (const layer of layers) {
    if (typeof layer.config === 'string') {
      try {
        Object.assign(merged, JSON.parse(readFileSync(layer.config, 'utf8')) as Record<string, unknown>);
      } catch (error) {
        problems.push(`config file ${layer.config}: ${(error as Error).message}`);
      }
    }
    for (const [k, v] of Object.entries(layer)) if (k !== 'config' && v !== undefined) merged[k] = v;
  }
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.') || '(config)'}: ${issue.message}`);
  }
  if (problems.length > 0 || !parsed.success) {
    throw tcError('TC_ERR_CONFIG', `invalid configuration:\n  ${problems.join('\n  ')}`, { details: { problems: problems.length } });
  }
  const c = parsed.data;
  const dataDir = resolve(c.dataDir);
  const config: DaemonConfig = {
    dataDir,
    listen: c.listen,
    dataListen: c.dataListen,
    catalog: c.catalog ?? `sqlite://${join(dataDir, 'catalog.db')}`,
    tokenFile: resolve(c.tokenFile ?? join(dataDir, 'token')),
    token: c.token,
    memoryBudget: c.memoryBudget,
    stagingBudget: c.stagingBudget ?? defaultStagingBytes(c.memoryBudget),
    importRoots: c.importRoots.map((r) => resolve(r)),
    shmDir: c.shmDir ?? join('/dev/shm', `tensorcast-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`),
    shmReserve: Math.min(c.shmReserve ?? defaultShmReserveBytes(c.memoryBudget), c.memoryBudget),
    drainTimeoutMs: c.drainTimeoutMs,
    leaseTtlMs: c.leaseTtlMs,
    replicaAdmission: c.replicaAdmission,
    logLevel: c.logLevel,
    httpHeadersTimeoutMs: c.httpHeadersTimeoutMs,
    httpIdleTimeoutMs: c.httpIdleTimeoutMs,
    httpKeepAliveTimeoutMs: c.httpKeepAliveTimeoutMs,
    httpRequestTimeoutMs: c.httpRequestTimeoutMs,
    httpMaxConnections: c.httpMaxConnections,
    advertise: c.advertise ?? defaultAdvertise(c.listen.host),
    exportBudget: c.exportBudget,
    exportTtlMs: c.exportTtlMs,
    daemonTtlMs: c.daemonTtlMs,
    objectMemory: c.objectMemory ?? c.memoryBudget,
    objectSpill: c.objectSpill,
    objectTxnTtlMs: c.objectTxnTtlMs,
    handshakeListen: c.handshakeListen,
    handshakeTtlMs: c.handshakeTtlMs,
    handshakeTokenFile: c.handshakeTokenFile === undefined ? undefined : resolve(c.handshakeTokenFile),
    handshakeTlsCert: c.handshakeTlsCert === undefined ? undefined : resolve(c.handshakeTlsCert),
    handshakeTlsKey: c.handshakeTlsKey === undefined ? undefined : resolve(c.handshakeTlsKey),
    handshakeTlsClientCa: c.handshakeTlsClientCa === undefined ? undefined : resolve(c.handshakeTlsClientCa),
    sessionsCold: c.sessionsCold,
    sessionsMeta: c.sessionsMeta ?? `sqlite://${join(dataDir, 'sessions.db')}`,
    sessionsHotBudget: c.sessionsHotBudget ?? Math.floor(c.memoryBudget / 4),
    sessionsLeaseTtlMs: c.sessionsLeaseTtlMs,
  };
  if ((config.handshakeTlsCert === undefined) !== (config.handshakeTlsKey === undefined)) {
    throw tcError('TC_ERR_CONFIG', 'invalid configuration:\n  handshakeTlsCert and handshakeTlsKey go together');
  }
  if (config.handshakeTlsClientCa !== undefined && config.handshakeTlsCert === undefined) {
    throw tcError('TC_ERR_CONFIG', 'invalid configuration:\n  handshakeTlsClientCa needs handshakeTlsCert and handshakeTlsKey');
  }
  if (config.handshakeListen !== undefined) {
    const h = config.handshakeListen;
    const clash = [config.listen, config.dataListen].find((a) => a.port !== 0 && a.port === h.port && a.host === h.host);
    if (clash !== undefined) {
      throw tcError(
        'TC_ERR_CONFIG',
        `invalid configuration:\n  handshakeListen ${h.host}:${h.port} must differ from the control API and data plane addresses`,
      );
    }
  }
  if (config.httpRequestTimeoutMs > 0 && config.httpRequestTimeoutMs < config.httpHeadersTimeoutMs) {
    throw tcError(
      'TC_ERR_CONFIG',
      `invalid configuration:\n  httpRequestTimeoutMs (${config.httpRequestTimeoutMs}) must be 0 or at least httpHeadersTimeoutMs (${config.httpHeadersTimeoutMs})`,
    );
  }
  const exposed = [config.listen, config.dataListen].filter((a) => !isLoopbackHost(a.host));
  // The handshake listener has a token of its own when --handshake-token-file is given, else the daemon's.
  if (config.handshakeListen !== undefined && config.handshakeTokenFile === undefined && !isLoopbackHost(config.handshakeListen.host)) {
    exposed.push(config.handshakeListen);
  }
  if (exposed.length > 0 && config.token === undefined && c.tokenFile === undefined) {
    throw tcError(
      'TC_ERR_CONFIG',
      `invalid configuration:\n  refusing to listen on ${exposed.map((a) => `${a.host}:${a.port}`).join(', ')} without a configured token (set TENSORCAST_TOKEN or --token-file)`,
    );
  }
  return config;
}

/** The host to advertise when none is configured: the listen host, or the host name for a wildcard. */
function defaultAdvertise(listenHost: string): string {
  return listenHost === '0.0.0.0' || listenHost === '::' ? hostname() : listenHost;
}

export { parseByteSize };
