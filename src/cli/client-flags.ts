// The flags every client command takes: --daemon URL (or TENSORCAST_DAEMON) and --token-file F (or
// TENSORCAST_TOKEN, the token itself, or TENSORCAST_TOKEN_FILE, a file holding it; default
// ~/.tensorcast/token).

import type { Command } from 'commander';
import { connect, type TensorcastClient } from '../client/tensorcast-client.js';

/** The parsed client flags. */
export interface ClientFlags {
  readonly daemon?: string;
  readonly tokenFile?: string;
}

/** What the help of every client command says about the environment. */
export const CLIENT_ENV_HELP = `
Environment:
  TENSORCAST_DAEMON      control URL of the daemon (when --daemon is not given)
  TENSORCAST_TOKEN       the token itself (when --token-file is not given)
  TENSORCAST_TOKEN_FILE  a file holding the token (when neither --token-file nor TENSORCAST_TOKEN is given)
  Without any of them the token is read from ~/.tensorcast/token, which \`tensorcast serve\` writes.`;

/** Adds --daemon and --token-file, and the environment they fall back to, to `cmd`. */
export function withClientFlags(cmd: Command): Command {
  return cmd
    .option('--daemon <url>', 'control URL of the daemon (default TENSORCAST_DAEMON or http://127.0.0.1:7070)')
    .option('--token-file <file>', 'a file holding the token (default TENSORCAST_TOKEN, TENSORCAST_TOKEN_FILE, ~/.tensorcast/token)')
    .addHelpText('after', CLIENT_ENV_HELP);
}

/** Connects as the flags say; a missing or rejected token names where it came from. */
export function clientFrom(flags: ClientFlags): Promise<TensorcastClient> {
  return connect({
    ...(flags.daemon === undefined ? {} : { url: flags.daemon }),
    ...(flags.tokenFile === undefined ? {} : { tokenFile: flags.tokenFile, tokenSource: '--token-file' }),
  });
}
