module github.com/keda-eks-samples/workloads/tools/demo

go 1.26.0
