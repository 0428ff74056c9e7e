// tensorcast/daemon: embed a store daemon.
export { createDaemon, type Daemon, type DaemonAddresses, type CreateDaemonOptions } from './create-daemon.js';
export { resolveConfig, configFromEnv, parseByteSize, type DaemonConfig } from './config.js';
