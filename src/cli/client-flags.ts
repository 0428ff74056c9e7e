// The flags every client command takes: --daemon URL (or TENSORCAST_DAEMON) and --token-file F (or
// TENSORCAST_TOKEN; default ~/.tensorcast/token).

import type { Command } from 'commander';
import { connect, type TensorcastClient } from '../client/tensorcast-client.js';

/** The parsed client flags. */
export interface ClientFlags {
  readonly daemon?: string;
  readonly tokenFile?: string;
}

/** Adds --daemon and --token-file to `cmd`. */
export function withClientFlags(cmd: Command): Command {
  return cmd
    .option('--daemon <url>', 'control URL of the daemon (default TENSORCAST_DAEMON or http://127.0.0.1:7070)')
    .option('--token-file <file>', 'token file (default TENSORCAST_TOKEN, else ~/.tensorcast/token)');
}

/** Connects as the flags say. */
export function clientFrom(flags: ClientFlags): Promise<TensorcastClient> {
  return connect({
    ...(flags.daemon === undefined ? {} : { url: flags.daemon }),
    ...(flags.tokenFile === undefined ? {} : { tokenFile: flags.tokenFile }),
  });
}
