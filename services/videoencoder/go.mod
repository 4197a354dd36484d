module github.com/keda-eks-samples/workloads/services/videoencoder

go 1.26.0

require github.com/keda-eks-samples/workloads/pkg v0.0.0

replace github.com/keda-eks-samples/workloads/pkg => ../../pkg
