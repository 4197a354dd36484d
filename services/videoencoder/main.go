// Command videoencoder is the run-to-completion job of the video-encoding
// sample (seed 003): a KEDA ScaledJob starts one per queued message; each
// receives one SQS message, "encodes" it, deletes it, reports to the result
// analyzer and exits.
package main

import "github.com/keda-eks-samples/workloads/pkg/cli"

func main() { cli.Main(run) }
