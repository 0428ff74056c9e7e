// The CLI loads a command's dependencies only when that command runs: `--help` loads commander alone and
// `inspect` none of the daemon's or client's packages (fastify, pino, sqlite, undici, prom-client). Asserted
// on the packages a run loaded, not on time. And the lazy command list agrees with each command's module.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { Command } from 'commander';
import { runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { COMMANDS, commandOf } from '../../src/cli/command-list.js';
import { TINY_LLAMA, writeSyntheticModel } from '../../src/format/synthetic-model.js';

const RECORDER = pathToFileURL(join(import.meta.dirname, '..', 'helpers', 'module-recorder.js')).href;
const HEAVY = ['fastify', 'pino', 'better-sqlite3', 'undici', 'prom-client', 'zod'];

async function packagesLoadedBy(dir: string, args: readonly string[]): Promise<{ run: CliResult; packages: string[] }> {
  const record = join(dir, `modules-${args[0] ?? 'none'}.txt`);
  const run = await runCli(args, { TENSORCAST_RECORD_MODULES: record }, ['--import', RECORDER]);
  const packages = readFileSync(record, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  return { run, packages };
}

test('startup: --help loads commander and no other package, and lists every command', async (t) => {
  const { run, packages } = await packagesLoadedBy(tempDir(t), ['--help']);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(packages, ['commander']);
  for (const c of COMMANDS) assert.match(run.stdout, new RegExp(`^  ${c.name}\\b`, 'm'), c.name);
});

test('startup: inspect of a model loads none of the daemon or client packages', async (t) => {
  const dir = tempDir(t);
  await writeSyntheticModel(join(dir, 'tiny'), TINY_LLAMA);
  const { run, packages } = await packagesLoadedBy(dir, ['inspect', join(dir, 'tiny'), '--json']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal((JSON.parse(run.stdout) as { valid: boolean }).valid, true);
  assert.deepEqual(
    packages.filter((p) => HEAVY.includes(p)),
    [],
  );
});

test('startup: each lazily listed command is the command its module registers, with the same arguments', async () => {
  for (const entry of COMMANDS) {
    const program = new Command();
    (await entry.load())(program);
    assert.equal(program.commands.length, 1, entry.name);
    const registered = program.commands[0]!;
    assert.equal(registered.name(), entry.name);
    const args = registered.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`)).join(' ');
    assert.equal(args, entry.args, entry.name);
  }
});

test('startup: the command to load is the first argument, or the one `help` names', () => {
  assert.equal(commandOf(['ls', '--json'])?.name, 'ls');
  assert.equal(commandOf(['help', 'serve'])?.name, 'serve');
  assert.equal(commandOf(['--help']), undefined);
  assert.equal(commandOf(['lss']), undefined);
  assert.equal(commandOf([]), undefined);
});

test('startup: every command still answers --help and `help <command>`', async () => {
  for (const c of COMMANDS) {
    const own = await runCli([c.name, '--help']);
    assert.equal(own.code, 0, `${c.name}: ${own.stderr}`);
    assert.match(own.stdout, new RegExp(`^Usage: tensorcast ${c.name} `, 'm'));
    const viaHelp = await runCli(['help', c.name]);
    assert.equal(viaHelp.stdout, own.stdout, c.name);
  }
});
