// Package kwok pins kwok (the fake-node controller) and kwokctl (which
// starts etcd, kube-apiserver, kube-controller-manager and kwok as local
// processes) for the local e2e cluster; see ../doc.go. `make cluster-bins`
// builds both with GOWORK=off.
package kwok
