// Runs the built `tensorcast` command as a user would: a separate process, exit code, stdout, stderr.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

/** The repository root. */
export const REPO_ROOT = findRoot();
/** The built CLI entry point. */
export const CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
/** A file under test/fixtures (not compiled: python scripts and the like). */
export const fixture = (name: string): string => join(REPO_ROOT, 'test', 'fixtures', name);

/** What a CLI run printed and returned. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `tensorcast ...args`; `nodeArgs` go to node before the CLI (e.g. `--import` of a recorder). */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, nodeArgs: readonly string[] = []): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
