// The CLI's commands, loaded lazily: each entry names a command and its arguments for the top-level help,
// and imports the command's module (and with it fastify, sqlite, undici, ...) only when that command runs,
// so `tensorcast --help` and `tensorcast inspect` start in a fraction of the time.

import type { Command } from 'commander';

/** One command: what the top-level help shows, and how to load the full definition. */
export interface CommandEntry {
  /** The command's name, as typed. */
  readonly name: string;
  /** Its arguments as the command declares them (`<path>`), shown in the top-level help. */
  readonly args: string;
  /** One line for the top-level help; the command's own help has its full description. */
  readonly summary: string;
  /** Imports the command's module and returns its register function. */
  readonly load: () => Promise<(program: Command) => void>;
}

/** Every command, in the order of the top-level help. A test checks each entry against its module. */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'inspect',
    args: '<path>',
    summary: 'validate a .safetensors file or model directory and list its tensors',
    load: async () => (await import('./commands/inspect.js')).registerInspect,
  },
  {
    name: 'slice',
    args: '<path>',
    summary: 'write a selection of a local model (tensors, a view, a TP rank) to a safetensors file',
    load: async () => (await import('./commands/slice.js')).registerSlice,
  },
  {
    name: 'serve',
    args: '',
    summary: 'run a store daemon (control API + data plane) until SIGTERM/SIGINT',
    load: async () => (await import('./commands/serve.js')).registerServe,
  },
  {
    name: 'import',
    args: '<path>',
    summary: 'store a model in the daemon (from a path or a connector URL, or --lazy); prints the artifact id',
    load: async () => (await import('./commands/import.js')).registerImport,
  },
  {
    name: 'push',
    args: '<key> <url>',
    summary: "write an artifact to a connector (file://, redis://, s3://) as a model directory, or SGLang's per-rank Redis layout",
    load: async () => (await import('./commands/push.js')).registerPush,
  },
  {
    name: 'verify',
    args: '<key>',
    summary: 'hash an artifact in full (a lazy one from its connector) and record its content id',
    load: async () => (await import('./commands/verify.js')).registerVerify,
  },
  {
    name: 'ls',
    args: '',
    summary: 'list keys, artifacts, sizes and replicas',
    load: async () => (await import('./commands/ls.js')).registerLs,
  },
  {
    name: 'objects',
    args: '',
    summary: "the daemon's objects: `objects ls [prefix]` lists them (key, size, version, tier), `objects rm <keys...>` deletes",
    load: async () => (await import('./commands/objects.js')).registerObjects,
  },
  {
    name: 'cluster',
    args: '',
    summary: 'the cluster: daemons (alive, last heartbeat) and, per artifact, replicas by daemon and kind',
    load: async () => (await import('./commands/cluster.js')).registerCluster,
  },
  {
    name: 'features',
    args: '',
    summary: 'feature stores: `features stat <storeId>` shows samples, generations, resident bytes and pending frees',
    load: async () => (await import('./commands/features.js')).registerFeatures,
  },
  {
    name: 'handshake',
    args: '',
    summary: 'KV-transfer metadata for prefill/decode: `handshake serve|publish|get|ls`',
    load: async () => (await import('./commands/handshake.js')).registerHandshake,
  },
  {
    name: 'sessions',
    args: '',
    summary: "the daemon's session KV cache: `sessions ls|stat|rm|swap-out|swap-in|gc`",
    load: async () => (await import('./commands/sessions.js')).registerSessions,
  },
  {
    name: 'load',
    args: '<key>',
    summary: 'load a selection of an artifact from the daemon into a safetensors file',
    load: async () => (await import('./commands/load.js')).registerLoad,
  },
  {
    name: 'export',
    args: '<key> <dir>',
    summary: 'write an artifact (or one TP rank of it) as a model directory',
    load: async () => (await import('./commands/export.js')).registerExport,
  },
  {
    name: 'pull-files',
    args: '<url> <dir>',
    summary: 'copy config and tokenizer files (or any files matching --allow) from a connector URL into a directory',
    load: async () => (await import('./commands/pull-files.js')).registerPullFiles,
  },
  {
    name: 'demo',
    args: '',
    summary: 'start a daemon, import a model, load every TP rank over TCP, shm and files, verify every byte',
    load: async () => (await import('./commands/demo.js')).registerDemo,
  },
];

/**
 * The command an argument list runs (`help <command>` included), or undefined when it names none of
 * {@link COMMANDS} (top-level help, version, or an unknown command: all commands are then listed).
 *
 * @example commandOf(['--daemon', 'x', 'ls']) // undefined: commands come first
 * @example commandOf(['help', 'ls']) // the ls entry
 */
export function commandOf(args: readonly string[]): CommandEntry | undefined {
  const first = args[0] === 'help' ? args[1] : args[0];
  return COMMANDS.find((c) => c.name === first);
}

/** Adds every command as a stub with its name, arguments and summary: enough for help and suggestions. */
export function registerStubs(program: Command): void {
  for (const c of COMMANDS) program.command(`${c.name}${c.args === '' ? '' : ` ${c.args}`}`).summary(c.summary);
}
