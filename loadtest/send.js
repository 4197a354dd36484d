// @ts-check
// sqsworker burst: one POST /send {"Messages": 2000}; the worker enqueues the
// messages with SendMessageBatch and the sqs-worker overlay scales on the
// queue depth (README: replicas to expect).
//   kubectl -n $NAMESPACE port-forward svc/sqsworker 8080:80 &
//   make load SCRIPT=loadtest/send.js BASE_URL=http://127.0.0.1:8080
import { baseURL, iteration, parse, scenarioOptions } from './lib/profiles.js';

// The numbers are in profiles.json ("send"), shared with the Go load generator.
const profile = parse(open('./profiles.json')).send;
const base = baseURL();

export const options = scenarioOptions('send', profile);

export default function () {
  iteration(base, profile);
}
