// Package localproc runs the repository's programs as local processes on
// 127.0.0.1, for the tests and for make demo: loopback ports for them, a
// wait until one answers, and our OpenTelemetry Collector set up on the
// shipped configs (collector.go).
//
// It is a module of its own with no requirements so that every module can
// import it — go.work's, and tools/collector and tools/kedasim outside it —
// without changing the versions any of them builds with.
package localproc

import (
	"errors"
	"net"
	"net/http"
	"time"
)

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago, for a child process that binds them itself. A listener of this
// process binds 127.0.0.1:0 and keeps its listener instead: a picked port
// can be taken by someone else before the child binds it. The n listeners
// are held until all are picked, so the ports differ.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// WaitOK polls url until it answers 200. It gives up when done is closed
// (the process exited) or timeout passes.
func WaitOK(url string, timeout time.Duration, done <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-done:
			return errors.New("exited before ready")
		default:
		}
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("not ready within " + timeout.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
