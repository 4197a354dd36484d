// Package cluster pins the control-plane binaries of the local e2e cluster
// (tools/kedasim/localcluster): etcd, kube-apiserver and
// kube-controller-manager, as `tool` directives of this module, built by
// `make cluster-bins` with GOWORK=off into a cache directory keyed by
// version. kwok and kwokctl live in ./kwok, a module of their own: kwok
// v0.8.0 wants k8s.io/* v0.36, k8s.io/kubernetes v1.35.4 replaces them with
// its v0.35.4 staging modules, and one build list cannot hold both.
//
// Kubernetes v1.35.4 (not v1.36, whose k8s.io/* would match KEDA's v0.36.4):
// it is the version tried end to end with KEDA v2.21.0. etcd v3.6.5 is the
// version k8s.io/kubernetes v1.35.4 itself requires, so it shares this build
// list. Outside go.work, like tools/kedasim: these pins must not reach the
// services' build list. No kube-scheduler: test pods name their node.
package cluster
