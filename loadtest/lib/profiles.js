// @ts-check
// What every script shares: the shape of profiles.json, the options checker,
// and one iteration of a profile's request mix. The numbers themselves live
// in ../profiles.json, which the Go load generator (tools/loadgen) reads too.

import http from 'k6/http';
import { check, sleep } from 'k6';

/**
 * One request of a profile's mix.
 * @typedef {object} Request
 * @property {string} name       k6's `name` tag: thresholds select it as `http_req_duration{name:<name>}`
 * @property {'GET' | 'POST'} method
 * @property {string} path       appended to BASE_URL
 * @property {unknown} [body]    sent as JSON (POST)
 * @property {number} status     the status the check expects
 */

/** @typedef {{ [metric: string]: string[] }} Thresholds */

/**
 * A fixed number of virtual users, each looping over the mix then thinking.
 * @typedef {object} ConstantVUs
 * @property {'constant-vus'} executor
 * @property {number} vus
 * @property {string} duration
 * @property {number} thinkTime  seconds slept after each pass over the mix
 * @property {Request[]} requests
 * @property {Thresholds} thresholds
 */

/**
 * An arrival rate ramped through stages; one iteration is one pass over the mix.
 * @typedef {object} RampingArrivalRate
 * @property {'ramping-arrival-rate'} executor
 * @property {number} startRate
 * @property {string} timeUnit
 * @property {number} preAllocatedVUs
 * @property {number} maxVUs
 * @property {import('k6/options').Stage[]} stages
 * @property {Request[]} requests
 * @property {Thresholds} thresholds
 */

/**
 * A fixed number of passes over the mix shared by some virtual users.
 * @typedef {object} SharedIterations
 * @property {'shared-iterations'} executor
 * @property {number} vus
 * @property {number} iterations
 * @property {string} maxDuration
 * @property {Request[]} requests
 * @property {Thresholds} thresholds
 */

/**
 * profiles.json: one entry per scenario.
 * @typedef {object} Profiles
 * @property {ConstantVUs} smoke          a short check that the target answers
 * @property {ConstantVUs} inflight       seed 000: 50 VUs for 600 s, GET /weatherforecast, 1 s think
 * @property {ConstantVUs} rps            seed 001: 16 VUs, GET /, 1 s think
 * @property {RampingArrivalRate} ramp    stepped arrival rate for scale-out experiments
 * @property {SharedIterations} send      sqsworker: one POST /send {"Messages": N}
 */

/**
 * k6's Options without its catch-all index signature, so that a misspelt
 * option name is an error instead of an unknown key k6 ignores with a warning.
 * @typedef {{ [K in keyof import('k6/options').Options as string extends K ? never : number extends K ? never : K]: import('k6/options').Options[K] }} StrictOptions
 */

/**
 * Parses profiles.json (the caller opens it: open() belongs to the entry
 * script's init context).
 * @param {string} text
 * @returns {Profiles}
 */
export function parse(text) {
  return JSON.parse(text);
}

/**
 * The options of a script that runs profile as its one scenario, named
 * name: the executor profiles.json names, with that profile's numbers (the
 * Go load generator replays the profile by the same executor), and the
 * profile's thresholds.
 * @param {string} name
 * @param {ConstantVUs | RampingArrivalRate | SharedIterations} profile
 * @returns {import('k6/options').Options}
 */
export function scenarioOptions(name, profile) {
  /** @type {StrictOptions} */
  const options = {
    scenarios: { [name]: scenario(profile) },
    thresholds: profile.thresholds,
  };
  return options;
}

/**
 * The k6 scenario of a profile, written as a literal of its executor's type
 * so that tsc checks every field.
 * @param {ConstantVUs | RampingArrivalRate | SharedIterations} profile
 * @returns {import('k6/options').Scenario}
 */
function scenario(profile) {
  switch (profile.executor) {
    case 'constant-vus':
      return /** @satisfies {import('k6/options').ConstantVUsScenario} */ ({
        executor: 'constant-vus', vus: profile.vus, duration: profile.duration,
      });
    case 'ramping-arrival-rate':
      return /** @satisfies {import('k6/options').RampingArrivalRateScenario} */ ({
        executor: 'ramping-arrival-rate', startRate: profile.startRate, timeUnit: profile.timeUnit,
        preAllocatedVUs: profile.preAllocatedVUs, maxVUs: profile.maxVUs, stages: profile.stages,
      });
    case 'shared-iterations':
      return /** @satisfies {import('k6/options').SharedIterationsScenario} */ ({
        executor: 'shared-iterations', vus: profile.vus, iterations: profile.iterations, maxDuration: profile.maxDuration,
      });
  }
}

/**
 * The target, from `k6 run -e BASE_URL=...`, without a trailing slash.
 * @returns {string}
 */
export function baseURL() {
  const url = __ENV.BASE_URL;
  if (!url) {
    throw new Error('BASE_URL is required: k6 run -e BASE_URL=http://127.0.0.1:8080 <script>');
  }
  return url.replace(/\/+$/, '');
}

/**
 * Sends one request of the mix and checks its status.
 * @param {string} base
 * @param {Request} r
 */
export function send(base, r) {
  const params = { tags: { name: r.name } };
  const res =
    r.method === 'POST'
      ? http.post(base + r.path, JSON.stringify(r.body ?? {}), {
          ...params,
          headers: { 'Content-Type': 'application/json' },
        })
      : http.get(base + r.path, params);
  check(res, { [`${r.name} status ${r.status}`]: (res) => res.status === r.status });
}

/**
 * One iteration: every request of the mix in order, then the think time.
 * @param {string} base
 * @param {{ requests: Request[], thinkTime?: number }} profile
 */
export function iteration(base, profile) {
  for (const r of profile.requests) {
    send(base, r);
  }
  if (profile.thinkTime) {
    sleep(profile.thinkTime);
  }
}
