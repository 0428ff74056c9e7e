import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { CpuTally, parseProcStat, processCpuSeconds } from './cpu.js';

test('parseProcStat: utime + stime after a command name holding spaces and parentheses', () => {
  const line = '4242 (node (bench) x) S 1 4242 4242 0 -1 4194560 9000 0 12 0 250 40 3 1 20 0 11 0 1234 5678 999\n';
  assert.equal(parseProcStat(line, 100), 2.9);
  assert.equal(parseProcStat(line, 1000), 0.29);
  assert.equal(parseProcStat('no fields here', 100), undefined);
});

test('processCpuSeconds: undefined for no pid or a process that is not there', () => {
  assert.equal(processCpuSeconds(undefined), undefined);
  assert.equal(processCpuSeconds(2 ** 22 + 7), undefined); // above Linux's pid_max limit
});

test('processCpuSeconds: follows the CPU this process spends', { skip: existsSync('/proc/self/stat') ? false : 'no /proc' }, () => {
  const before = processCpuSeconds(process.pid)!;
  const start = process.cpuUsage();
  let x = 0;
  while (process.cpuUsage(start).user < 300_000) x += Math.sqrt(x + 1);
  assert.ok(x > 0);
  const spent = processCpuSeconds(process.pid)! - before;
  // 0.3 s of user time at most one clock tick short on either reading.
  assert.ok(spent >= 0.25, `spent ${spent} s`);
});

test('CpuTally: CPU seconds per GB summed over runs; no daemon figure once a run lacks it', () => {
  const t = new CpuTally();
  assert.equal(t.clientPerGB, undefined);
  t.add({ value: 0, seconds: 1, daemonCpuSeconds: 0.2, clientCpuSeconds: 0.1 }, 5e8);
  t.add({ value: 0, seconds: 1, daemonCpuSeconds: 0.4, clientCpuSeconds: 0.3 }, 1.5e9);
  assert.equal(t.runs, 2);
  assert.ok(Math.abs(t.daemonPerGB! - 0.3) < 1e-12);
  assert.ok(Math.abs(t.clientPerGB! - 0.2) < 1e-12);
  t.add({ value: 0, seconds: 1, daemonCpuSeconds: undefined, clientCpuSeconds: 0 }, 1e9);
  assert.equal(t.daemonPerGB, undefined);
});
