// Package kedasim is the root of the KEDA module: every package of the
// repository that needs KEDA's or Kubernetes' Go code. It is its own module,
// outside go.work: KEDA pulls k8s.io v0.36 and three clouds' SDKs, whose pins
// must not decide what the services build with, and it is one module so
// KEDA's long cold build is paid once.
//
// What a user runs (make target in brackets):
//
//	cmd/preview      what KEDA would do with an overlay's trigger on the local signal [make preview]
//	cmd/iam          IAM policies, trust policies, role table, eksctl ClusterConfig [make iam, make cluster-config]
//	cmd/keda-adapter our KEDA metrics adapter for the local control plane [make cluster-bins]
//
// The libraries behind them:
//
//	manifests    render an overlay as users do; decode it into Kubernetes' and KEDA's types
//	kedascaler   build a rendered trigger with KEDA's scaler constructors; poll it
//	scalemath    the HPA's and KEDA's ScaledJob replica arithmetic
//	iamgen       the IAM documents and eksctl ClusterConfig from the params file
//	timeline     the scaling timeline page (make preview, the e2e tests)
//	localcluster the local control plane: etcd, kube-apiserver, controller-manager, kwok, KEDA
//	podrunner    runs each pod of the local control plane as a local process
//
// The tests: deploytests (the deploy tree, make test-deploy) and e2e (build
// tag e2e, make e2e); internal/ holds what only they use.
package kedasim
