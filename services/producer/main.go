// Command producer is the one-shot Job of the video-encoding sample (seed
// 003): it enqueues NUM_MESSAGES encoding requests with SendMessageBatch,
// prints a summary and exits non-zero if any was not sent.
package main

import "github.com/keda-eks-samples/workloads/pkg/cli"

func main() { cli.Main(run) }
