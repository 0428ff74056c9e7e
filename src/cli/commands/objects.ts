// `tensorcast objects ls [PREFIX] [--json]` and `tensorcast objects rm KEY...` (docs/cli.md): the daemon's
// objects (docs/api.md, "Objects") through its control API. A namespace with a token needs --store-token (or
// TENSORCAST_STORE_TOKEN): without it, ls leaves that namespace's objects out and rm fails for them.

import type { Command } from 'commander';
import { errorFromWire, isTensorcastError, tcError } from '../../core/errors.js';
import { printable } from '../../core/keys.js';
import { parseObjectKey } from '../../core/object-keys.js';
import { formatBytes } from '../../core/strings.js';
import {
  MAX_DELETE_KEYS,
  MAX_LIST_LIMIT,
  STORE_TOKEN_HEADER,
  type DeleteObjectResult,
  type DeleteObjectsResponse,
  type ObjectList,
  type ObjectMeta,
} from '../../protocol/http/objects.js';
import type { TensorcastClient } from '../../client/tensorcast-client.js';
import { clientFrom, withClientFlags, type ClientFlags } from '../client-flags.js';
import { EXIT_BAD_INPUT, EXIT_FAILURE, exitCodeOf } from '../exit-codes.js';
import { formatTable } from './inspect.js';

interface ObjectFlags extends ClientFlags {
  readonly storeToken?: string;
  readonly json?: boolean;
  readonly force?: boolean;
}

/** What the help says about the store token's environment variable. */
const STORE_TOKEN_HELP = `
  TENSORCAST_STORE_TOKEN  a namespace's store token (when --store-token is not given)`;

/** The store-token header the flags (or the environment) give. */
function storeHeaders(flags: ObjectFlags): Record<string, string> {
  const token = flags.storeToken ?? process.env['TENSORCAST_STORE_TOKEN'];
  return token === undefined || token === '' ? {} : { [STORE_TOKEN_HEADER]: token };
}

/** Every object under `prefix`, page by page. */
async function listAll(control: TensorcastClient['control'], prefix: string, headers: Record<string, string>): Promise<ObjectMeta[]> {
  const out: ObjectMeta[] = [];
  let after: string | null = null;
  do {
    const q = new URLSearchParams({ prefix, limit: String(MAX_LIST_LIMIT) });
    if (after !== null) q.set('after', after);
    const page: ObjectList = await control.json<ObjectList>('GET', `/v1/objects?${q.toString()}`, undefined, undefined, headers);
    out.push(...page.objects);
    after = page.next;
  } while (after !== null);
  return out;
}

/**
 * The exit code of an rm: 1 when a key failed for a reason other than bad input (TC_ERR_AUTH, ...), else 2
 * when a key was invalid or (without --force) missing, else 0.
 */
export function rmExitCode(results: readonly DeleteObjectResult[], force: boolean): number {
  let code = 0;
  for (const r of results) {
    if (r.ok) {
      if (!r.existed && !force) code = Math.max(code, EXIT_BAD_INPUT);
      continue;
    }
    const c = exitCodeOf(errorFromWire(r.code, r.message, 'daemon'));
    if (c === EXIT_FAILURE) return EXIT_FAILURE;
    code = Math.max(code, c);
  }
  return code;
}

/** Registers `objects ls` and `objects rm`. */
export function registerObjects(program: Command): void {
  const objects = program.command('objects').description("the daemon's objects: list and delete");
  withClientFlags(
    objects
      .command('ls [prefix]')
      .description('list objects (key, size, version, tier, lost) whose key starts with PREFIX, and a total')
      .option('--store-token <token>', "a namespace's store token: its objects are listed only with it")
      .option('--json', 'print one JSON object {objects: [...]}'),
  )
    .addHelpText('after', STORE_TOKEN_HELP)
    .action(async (prefix: string | undefined, flags: ObjectFlags) => {
      const client = await clientFrom(flags);
      try {
        const list = await listAll(client.control, prefix ?? '', storeHeaders(flags));
        if (flags.json === true) {
          process.stdout.write(`${JSON.stringify({ objects: list })}\n`);
          return;
        }
        const rows: string[][] = [['KEY', 'SIZE', 'VERSION', 'TIER', 'LOST']];
        for (const o of list) rows.push([printable(o.key), formatBytes(o.size), String(o.version), o.tier, o.lost === true ? 'lost' : '-']);
        const total = list.reduce((n, o) => n + o.size, 0);
        process.stdout.write(formatTable(rows));
        process.stdout.write(`${list.length} object${list.length === 1 ? '' : 's'}, ${formatBytes(total)} (${total} bytes)\n`);
      } finally {
        await client.close();
      }
    });
  withClientFlags(
    objects
      .command('rm <keys...>')
      .description(
        'delete objects; prints one line per key. Exit 1 when a key failed (e.g. TC_ERR_AUTH), 2 when a key was invalid or missing (missing keys are fine with --force)',
      )
      .option('--store-token <token>', "a namespace's store token (needed to delete its objects)")
      .option('--force', 'a missing key is not an error')
      .option('--json', 'print one JSON object {results: [...]}'),
  )
    .addHelpText('after', STORE_TOKEN_HELP)
    .action(async (keys: string[], flags: ObjectFlags) => {
      // Keys the daemon would refuse are reported here, in order with the others.
      const results = new Map<number, DeleteObjectResult>();
      const valid: { index: number; key: string }[] = [];
      keys.forEach((key, index) => {
        try {
          parseObjectKey(key);
          valid.push({ index, key });
        } catch (error) {
          const e = isTensorcastError(error) ? error : tcError('TC_ERR_INVALID_ARGUMENT', String(error));
          results.set(index, { key, ok: false, code: e.code, message: e.message });
        }
      });
      const client = await clientFrom(flags);
      try {
        for (let i = 0; i < valid.length; i += MAX_DELETE_KEYS) {
          const batch = valid.slice(i, i + MAX_DELETE_KEYS);
          const r = await client.control.json<DeleteObjectsResponse>(
            'POST',
            '/v1/objects/delete',
            { keys: batch.map((b) => b.key) },
            undefined,
            storeHeaders(flags),
          );
          r.results.forEach((res, j) => results.set(batch[j]!.index, res));
        }
      } finally {
        await client.close();
      }
      const ordered = keys.map((_, i) => results.get(i)!);
      if (flags.json === true) process.stdout.write(`${JSON.stringify({ results: ordered })}\n`);
      else
        for (const r of ordered) {
          const key = printable(r.key);
          if (r.ok && r.existed) process.stdout.write(`deleted ${key}\n`);
          else if (r.ok && flags.force === true) process.stdout.write(`not found ${key} (ignored)\n`);
          else if (r.ok) process.stderr.write(`error TC_ERR_NOT_FOUND: ${key}: no such object\n`);
          else process.stderr.write(`error ${r.code}: ${key}: ${r.message}\n`);
        }
      process.exitCode = rmExitCode(ordered, flags.force === true);
    });
}
