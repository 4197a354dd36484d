// @ts-check
// Scale-out experiment: GET /weatherforecast at an arrival rate stepped up
// 4 -> 16 -> 24 per second, each step held 3 minutes (long enough for the
// CloudWatch-read triggers' one-minute lag), then down to 0. An arrival rate
// does not slow down when the service does, unlike virtual users.
//   make load SCRIPT=loadtest/ramp.js BASE_URL=http://127.0.0.1:8080
import { baseURL, iteration, parse, scenarioOptions } from './lib/profiles.js';

// The numbers are in profiles.json ("ramp"), shared with the Go load generator.
const profile = parse(open('./profiles.json')).ramp;
const base = baseURL();

export const options = scenarioOptions('ramp', profile);

export default function () {
  iteration(base, profile);
}
