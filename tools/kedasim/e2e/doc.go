// Package e2e applies the rendered overlays (overlay + components/local-e2e)
// to a local control plane — kwokctl with etcd, kube-apiserver and
// kube-controller-manager built from Go, the real KEDA operator and metrics
// adapter (../localcluster) — where the process runner
// (../podrunner) runs each pod's real binaries, and asserts the
// replica count the real KEDA + HPA controllers reach over time.
//
// The scenarios run in parallel (t.Parallel), each on its own control
// plane, pod address range (127.<n>.x.y) and emulators; the run ends with
// a summary and fails if a process any of them started is still running
// (summary_test.go).
//
// The tests carry the build tag e2e: `make e2e` runs them (after
// `make cluster-bins` and `make build`); `make test` does not.
package e2e
