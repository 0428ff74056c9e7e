// `tensorcast handshake publish ENGINE_ID --tp-rank R --dp-rank D --file META.msgpack [--keep-alive]`: validates
// a rank payload (as an engine wrote it, e.g. with Python's msgpack) against the flags and PUTs its bytes
// unchanged; with --keep-alive, renews it (publishing again when the listener lost it) until SIGTERM/SIGINT.

import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { tcError, wrapIoError } from '../../../core/errors.js';
import { decodeRankMetadata } from '../../../handshake/rank-metadata.js';
import { handshakeClientFrom, rankFlag, withHandshakeClientFlags, type HandshakeClientFlags } from './handshake-client-flags.js';

interface PublishFlags extends HandshakeClientFlags {
  readonly tpRank: string;
  readonly dpRank: string;
  readonly file: string;
  readonly keepAlive?: boolean;
  readonly renewEvery?: string;
  readonly removeOnExit?: boolean;
}

/** Registers `handshake publish`. */
export function registerHandshakePublish(group: Command): void {
  withHandshakeClientFlags(
    group
      .command('publish')
      .description("publish one rank's KV-transfer metadata (a msgpack payload file, docs/handshake.md) to a handshake listener")
      .argument('<engineId>', 'the engine (as in the payload)')
      .requiredOption('--tp-rank <r>', 'the TP rank (as in the payload)')
      .requiredOption('--dp-rank <d>', 'the DP rank (as in the payload)')
      .requiredOption('--file <file>', 'the msgpack payload')
      .option('--keep-alive', 'keep renewing it until SIGTERM/SIGINT (publishing again if the listener lost it)')
      .option('--renew-every <ms>', 'with --keep-alive: renewal period in ms (default: a third of the TTL)')
      .option('--remove-on-exit', "with --keep-alive: delete the engine's ranks of this incarnation when stopped"),
  ).action(async (engineId: string, flags: PublishFlags) => {
    const tpRank = rankFlag('--tp-rank', flags.tpRank);
    const dpRank = rankFlag('--dp-rank', flags.dpRank);
    const payload = await readFile(flags.file).catch((e: unknown) => Promise.reject(wrapIoError(e, 'cannot read --file', flags.file)));
    const meta = decodeRankMetadata(payload);
    if (meta.engineId !== engineId || meta.tpRank !== tpRank || meta.dpRank !== dpRank) {
      throw tcError(
        'TC_ERR_INVALID_ARGUMENT',
        `${flags.file} holds engine '${meta.engineId}' rank ${meta.tpRank}/${meta.dpRank}, not '${engineId}' ${tpRank}/${dpRank}`,
      );
    }
    const renewEveryMs = flags.renewEvery === undefined ? undefined : rankFlag('--renew-every', flags.renewEvery);
    const hs = await handshakeClientFrom(flags);
    try {
      const line = (expiresAtMs: number): string =>
        `published ${engineId} tp ${tpRank} dp ${dpRank} incarnation ${meta.incarnation} hash ${meta.compatibilityHash} ` +
        `(${payload.byteLength} bytes, expires ${new Date(expiresAtMs).toISOString()}) on ${hs.url}\n`;
      if (flags.keepAlive !== true) {
        process.stdout.write(line((await hs.publish(payload)).expiresAtMs));
        return;
      }
      const stopped = new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      const publisher = await hs.publisher(payload, renewEveryMs === undefined ? {} : { renewEveryMs });
      process.stdout.write(line(Date.now()).replace(/expires [^)]*/, 'kept alive'));
      // The publisher's timer does not hold the process open (library use); the command stays until a signal.
      const hold = setInterval(() => undefined, 3_600_000);
      const signal = await stopped;
      clearInterval(hold);
      await publisher.stop({ remove: flags.removeOnExit === true });
      const s = publisher.stats();
      process.stdout.write(`stopped on ${signal}: ${s.renewals} renewals, ${s.republishes} republishes, ${s.errors} errors\n`);
    } finally {
      await hs.close();
    }
  });
}
