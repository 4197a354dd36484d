// Helpers to run the repository's programs as local processes. A module of
// its own with no requirements: go.work's modules, tools/collector and
// tools/kedasim all import it, and it changes none of their build lists.
module github.com/keda-eks-samples/workloads/pkg/localproc

go 1.26.0
