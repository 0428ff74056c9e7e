// `tensorcast handshake ...` (docs/handshake.md): run the handshake listener, and publish, get and list
// KV-transfer metadata through it. One file per subcommand under handshake/.

import type { Command } from 'commander';
import { registerHandshakeGet } from './handshake/get.js';
import { registerHandshakeLs } from './handshake/ls.js';
import { registerHandshakePublish } from './handshake/publish.js';
import { registerHandshakeServe } from './handshake/serve.js';

/** Registers `handshake serve|publish|get|ls`. */
export function registerHandshake(program: Command): void {
  const group = program.command('handshake').description('KV-transfer metadata exchange for disaggregated prefill/decode');
  registerHandshakeServe(group);
  registerHandshakePublish(group);
  registerHandshakeGet(group);
  registerHandshakeLs(group);
}
