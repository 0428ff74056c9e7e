// The one way a test steps aside when something it needs (a service, a python with the reference
// libraries) is missing: a loud skip, or a failure when TENSORCAST_REQUIRE_SERVICES=1 (set by .ci/run),
// so CI never passes by skipping the checks it exists to run.

import type { TestContext } from 'node:test';

/** The environment variable that turns every skip into a failure. */
export const REQUIRE_SERVICES_ENV = 'TENSORCAST_REQUIRE_SERVICES';

/** True when `env` says missing services fail tests instead of skipping them. */
export function servicesRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[REQUIRE_SERVICES_ENV] === '1';
}

/** Thrown by {@link skipOrFail} when skipping is not allowed: the test fails with `reason`. */
export class RequiredServiceMissing extends Error {
  override readonly name = 'RequiredServiceMissing';
}

/**
 * Skips the test `t` with `reason` (the caller returns right after), or, when
 * TENSORCAST_REQUIRE_SERVICES=1, throws {@link RequiredServiceMissing} so the test fails with the reason.
 *
 * @example
 * const py = pythonWith(['torch']);
 * if (py === undefined) return skipOrFail(t, missingPython(['torch']));
 */
export function skipOrFail(t: Pick<TestContext, 'skip'>, reason: string, env: NodeJS.ProcessEnv = process.env): void {
  if (servicesRequired(env)) {
    throw new RequiredServiceMissing(`${reason} [${REQUIRE_SERVICES_ENV}=1 turns this skip into a failure]`);
  }
  t.skip(reason);
}
