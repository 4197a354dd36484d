// Command sqsworker is the SQS consumer Deployment of the autoscaling samples
// (seed 004): KEDA's aws-sqs-queue trigger scales it on queue depth.
package main

import "github.com/keda-eks-samples/workloads/pkg/cli"

func main() { cli.Main(run) }
