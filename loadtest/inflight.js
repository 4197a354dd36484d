// @ts-check
// Seed 000's load: 50 virtual users for 600 s, each GET /weatherforecast (a
// 0-1.5 s delay) then 1 s of think time: about 21 requests in flight, the
// signal of the sidecar, gateway and amp overlays (README: replicas to expect).
//   make load SCRIPT=loadtest/inflight.js BASE_URL=http://127.0.0.1:8080
import { baseURL, iteration, parse, scenarioOptions } from './lib/profiles.js';

// The numbers are in profiles.json ("inflight"), shared with the Go load generator.
const profile = parse(open('./profiles.json')).inflight;
const base = baseURL();

export const options = scenarioOptions('inflight', profile);

export default function () {
  iteration(base, profile);
}
