// Package buildinfo holds the version stamped into every binary at build
// time. It is the project's one package-level variable, because the linker
// can only set a variable:
//
//	go build -ldflags "-X github.com/keda-eks-samples/workloads/pkg/buildinfo.Version=v1.2.3" ./services/webapi
//
// `make build` passes `git describe --tags --always --dirty`; the Dockerfile
// passes its VERSION build argument the same way. The version is shown in
// the start-up log, in GET /healthz and as the OTel resource's
// service.version.
package buildinfo

// Version is the build's version; "dev" when the linker did not set it.
var Version = "dev"
