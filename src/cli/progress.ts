// A progress bar on stderr for long work: shown only when stderr is a terminal and the work has run
// for more than a second, so scripts and short runs see nothing.

import cliProgress from 'cli-progress';
import { formatBytes } from '../core/strings.js';

/** Reports byte progress; call {@link update} freely and {@link stop} at the end. */
export class ByteProgress {
  private bar: cliProgress.SingleBar | undefined;
  private readonly startedAt = Date.now();

  constructor(
    private readonly label: string,
    private readonly totalBytes: number,
    private readonly enabled = process.stderr.isTTY === true,
  ) {}

  update(doneBytes: number): void {
    if (!this.enabled) return;
    if (this.bar === undefined) {
      if (Date.now() - this.startedAt < 1000) return;
      this.bar = new cliProgress.SingleBar(
        {
          stream: process.stderr,
          format: `${this.label} [{bar}] {percentage}% | {doneText} of {totalText} | eta {eta_formatted}`,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(this.totalBytes, 0, { doneText: '0 B', totalText: formatBytes(this.totalBytes) });
    }
    this.bar.update(doneBytes, { doneText: formatBytes(doneBytes), totalText: formatBytes(this.totalBytes) });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
