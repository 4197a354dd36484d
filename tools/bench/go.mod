module github.com/keda-eks-samples/workloads/tools/bench

go 1.26.0
