// Package collectortest holds the tests of our collector build (tools/collector)
// against the configs the overlays ship (deploy/collector/*.yaml). The tests
// run the real binary as a separate process: this package imports none of
// the collector's code, so `go test -race` does not rebuild the collector's
// dependencies with the race detector.
//
// The binary is OTELCOL_BIN when set (make test-collector passes bin/otelcol),
// otherwise built once per run with `go build` into a temporary directory.
package collectortest
