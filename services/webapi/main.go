// Command webapi is the HTTP workload of the autoscaling samples (seeds 000
// and 001): a weather API whose active requests and request rate drive KEDA.
package main

import "github.com/keda-eks-samples/workloads/pkg/cli"

func main() { cli.Main(run) }
