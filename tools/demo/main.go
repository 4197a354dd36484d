// Command demo runs the samples on this machine, against local stand-ins for
// AWS, and prints the signals KEDA would scale on as they move. It starts
// every process itself, on 127.0.0.1 and free ports, and stops them all on
// exit (or Ctrl-C). Run it with `make demo`.
package main

import "github.com/keda-eks-samples/workloads/pkg/localproc"

func main() { localproc.Main(run) }
