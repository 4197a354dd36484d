// Command bench is the harness behind `make bench`. It reads the output of
// the Go benchmarks (-bench-out) and prints each goal as a ratio measured in
// that same run, then measures the service binaries themselves: stripped
// size, start-up to the first /readyz 200, and idle RSS. It ends with one
// line naming the goals this run did not meet. It reports; it does not gate:
// the exit status is 0 whatever the figures (non-zero only if it could not
// measure).
package main

import "github.com/keda-eks-samples/workloads/pkg/localproc"

func main() { localproc.Main(run) }
