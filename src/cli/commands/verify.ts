// `tensorcast verify KEY`: the daemon hashes every canonical byte of an artifact. A stored artifact's files
// must still give its id; a lazy artifact's bytes are streamed from its connector and its content id (the
// id a full import of those bytes gets) is recorded with it. Exit code 0 when verified, 1 otherwise.

import type { Command } from 'commander';
import { formatBytes } from '../../core/strings.js';
import { ByteProgress } from '../progress.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';

/** Registers `verify`. */
export function registerVerify(program: Command): void {
  withClientFlags(
    program
      .command('verify')
      .description('hash an artifact in full on the daemon (a lazy one streamed from its connector) and record its content id')
      .argument('<key>', 'a key (or an artifact id tc1:... / tcl:...)')
      .option('--json', 'print one JSON object'),
  ).action(async (key: string, flags: ClientFlags & { json?: boolean }) => {
    const client = await clientFrom(flags);
    let progress: ByteProgress | undefined;
    try {
      const r = await client.verify(key, {
        onProgress: (done, total) => {
          if (total === 0) return;
          progress ??= new ByteProgress('verify', total);
          progress.update(done);
        },
      });
      progress?.stop();
      if (flags.json === true) process.stdout.write(`${JSON.stringify(r)}\n`);
      else {
        process.stdout.write(`${r.contentId}\n`);
        const verdict = r.lazy ? 'content id recorded (a lazy id is not a content id)' : r.matches === true ? 'verified' : 'MISMATCH';
        process.stderr.write(`${r.artifactId}: ${formatBytes(r.totalBytes)} hashed: ${verdict}\n`);
      }
      if (r.matches === false) process.exitCode = 1;
    } finally {
      progress?.stop();
      await client.close();
    }
  });
}
