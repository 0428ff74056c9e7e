// A contender of the session-metadata race in its own process: `node session-meta-race-child.js URL SESSION
// OWNER COUNT` opens the store at URL, runs raceAppends and prints the applied uris as one JSON line.

import { openSessionMetaStore } from '../../src/sessions/meta/open-session-meta-store.js';
import { raceAppends } from './session-meta-race.js';

const [url, sessionId, owner, count] = process.argv.slice(2);
if (url === undefined || sessionId === undefined || owner === undefined || count === undefined) {
  process.stderr.write('usage: session-meta-race-child URL SESSION OWNER COUNT\n');
  process.exit(2);
}
const store = await openSessionMetaStore(url);
try {
  const applied = await raceAppends(store, sessionId, owner, Number(count));
  process.stdout.write(`${JSON.stringify(applied)}\n`);
} finally {
  await store.close();
}
