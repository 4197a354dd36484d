// @ts-check
// Smoke: two virtual users for a few seconds, GET /weatherforecast and GET /
// then 1 s of think time; the thresholds say the target answers, and fast.
//   make load SCRIPT=loadtest/smoke.js BASE_URL=http://127.0.0.1:8080
import { baseURL, iteration, parse, scenarioOptions } from './lib/profiles.js';

// The numbers are in profiles.json ("smoke"), shared with the Go load generator.
const profile = parse(open('./profiles.json')).smoke;
const base = baseURL();

export const options = scenarioOptions('smoke', profile);

export default function () {
  iteration(base, profile);
}
