// Command resultanalyzer is the REST service the video-encoder jobs of the
// ScaledJob sample (seed 003) report to when they finish or are killed, with
// a page that draws how KEDA scaled them.
package main

import "github.com/keda-eks-samples/workloads/pkg/cli"

func main() { cli.Main(run) }
