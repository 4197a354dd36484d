// Package deploytests holds the tests of the deploy tree (deploy/): every
// kustomize overlay rendered as users render it, then checked with the code
// of the projects that will read it — Kubernetes' and KEDA's Go types, KEDA's
// CRD schemas through the apiextensions validator, KEDA's scaler
// constructors, the Pod Security Admission library — plus the images, IAM
// documents, Dockerfile and bake file. Signal tests run our real services
// against loopback components (the SQS emulator, our collector, Prometheus,
// a CloudWatch stand-in) and read the signal with KEDA's scaler built from
// the rendered trigger (cloudwatch_direct_test.go, signals_*_test.go).
//
// The e2e tests (build tag e2e, `make e2e`) run on a real control plane with
// the real KEDA operator, metrics adapter and HPA controller, all local
// processes on 127.0.0.1 (../localcluster; binaries from `make
// cluster-bins`: the control plane and KEDA's cmd/operator, tools of this
// module, and our cmd/keda-adapter), in ../e2e. `make test` never starts them.
//
// Run it with `make test-deploy`; the module is described in ../doc.go.
package deploytests
