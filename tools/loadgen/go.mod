module github.com/keda-eks-samples/workloads/tools/loadgen

go 1.26.0

require (
	github.com/keda-eks-samples/workloads/pkg v0.0.0
	// MIT: constant and ramped arrival rates (k6 itself is AGPL and is never built here; users run their own)
	github.com/tsenart/vegeta/v12 v12.13.0
)

require (
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/influxdata/tdigest v0.0.1 // indirect
	github.com/josharian/intern v1.0.0 // indirect
	github.com/keda-eks-samples/workloads/pkg/localproc v0.0.0 // indirect
	github.com/mailru/easyjson v0.7.7 // indirect
	github.com/rs/dnscache v0.0.0-20230804202142-fc85eb664529 // indirect
	golang.org/x/exp v0.0.0-20260908205506-85c1c2202aba // indirect
	golang.org/x/net v0.59.0 // indirect
	golang.org/x/sync v0.23.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	gonum.org/v1/gonum v0.17.0 // indirect
)

replace github.com/keda-eks-samples/workloads/pkg => ../../pkg

replace github.com/keda-eks-samples/workloads/pkg/localproc => ../../pkg/localproc
