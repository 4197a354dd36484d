module github.com/keda-eks-samples/workloads/tools/bench

go 1.26.0

replace github.com/keda-eks-samples/workloads/pkg/localproc => ../../pkg/localproc

require github.com/keda-eks-samples/workloads/pkg/localproc v0.0.0
