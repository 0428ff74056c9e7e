// The daemon the daemon suite measures: a child process on its own data directory, its pid (for its CPU
// time), a client connected to it, and a restart that gives a fresh state (no replicas, nothing remembered
// about earlier reads) while the stored artifact and the page cache stay.

import { join } from 'node:path';
import { connect, type TensorcastClient } from '../src/client/tensorcast-client.js';
import { spawnPrivateDaemon, type SpawnedDaemon } from '../src/cli/spawn-daemon.js';

/** Replica budget: the largest model's memory and shm replicas, and a few TP views, side by side. */
const MEMORY_BUDGET = '8GiB';

/** A private daemon and a client of it. */
export class BenchDaemon {
  private constructor(
    private readonly dataDir: string,
    private readonly importRoot: string,
    private daemon: SpawnedDaemon,
    private connected: TensorcastClient,
  ) {}

  /** Starts a daemon on `dataDir` that may import from `importRoot`, and connects to it. */
  static async start(dataDir: string, importRoot: string): Promise<BenchDaemon> {
    const d = await spawnPrivateDaemon(dataDir, { importRoots: [importRoot], memoryBudget: MEMORY_BUDGET });
    try {
      return new BenchDaemon(dataDir, importRoot, d, await connect({ url: d.controlUrl, tokenFile: join(dataDir, 'token') }));
    } catch (error) {
      await d.stop();
      throw error;
    }
  }

  get client(): TensorcastClient {
    return this.connected;
  }

  /** Process id of the daemon (for /proc/<pid>/stat). */
  get pid(): number | undefined {
    return this.daemon.child.pid;
  }

  get daemonId(): string {
    return this.daemon.daemonId;
  }

  /** Stops the process at once (the bench's exit hook: a crashed run leaves no daemon behind). */
  kill(): void {
    this.daemon.child.kill('SIGKILL');
  }

  /**
   * Stops the daemon and starts it again on the same data directory: replicas (memory and shm) and the
   * admission memory are gone, the artifact and its key stay.
   */
  async restart(): Promise<void> {
    await this.close();
    this.daemon = await spawnPrivateDaemon(this.dataDir, { importRoots: [this.importRoot], memoryBudget: MEMORY_BUDGET });
    this.connected = await connect({ url: this.daemon.controlUrl, tokenFile: join(this.dataDir, 'token') });
  }

  /** Tiers ('memory', 'shm') of the replicas this daemon holds of one view (viewId undefined: the whole artifact). */
  async replicaTiers(artifactId: string, viewId: string | undefined): Promise<string[]> {
    const artifact = (await this.connected.listArtifacts()).find((a) => a.artifactId === artifactId);
    return (artifact?.replicas ?? [])
      .filter((r) => r.daemonId === this.daemonId && r.tier !== 'disk' && (r.viewId ?? undefined) === viewId)
      .map((r) => r.tier);
  }

  async close(): Promise<void> {
    await this.connected.close();
    await this.daemon.stop();
  }
}
