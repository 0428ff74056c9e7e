// Preloaded into a daemon the benchmarks spawn (`NODE_OPTIONS=--import <this file>`, since NODE_OPTIONS
// refuses --cpu-prof): records a V8 CPU profile of the whole process and writes it to
// $TENSORCAST_CPU_PROF_DIR/<pid>.cpuprofile when the process exits (open it in Chrome DevTools).

import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.TENSORCAST_CPU_PROF_DIR;
if (dir !== undefined && dir !== '') {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  // On the main thread the inspector answers synchronously, so the profile is written before the exit.
  process.once('exit', () => {
    session.post('Profiler.stop', (error, result) => {
      if (error === null) writeFileSync(join(dir, `${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
