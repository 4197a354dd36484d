// @ts-check
// Seed 001's load: 16 virtual users for 600 s, each GET / (answered at once)
// then 1 s of think time: about 16 requests per second, the signal of the
// cloudwatch-direct overlay (README: replicas to expect).
//   make load SCRIPT=loadtest/rps.js BASE_URL=http://127.0.0.1:8080
import { baseURL, iteration, parse, scenarioOptions } from './lib/profiles.js';

// The numbers are in profiles.json ("rps"), shared with the Go load generator.
const profile = parse(open('./profiles.json')).rps;
const base = baseURL();

export const options = scenarioOptions('rps', profile);

export default function () {
  iteration(base, profile);
}
