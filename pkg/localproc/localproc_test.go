package localproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFreePortsAreDistinctAndBindable(t *testing.T) {
	ports, err := FreePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ports)))) != 5 {
		t.Fatalf("ports not distinct: %v", ports)
	}
	lo, hi := pickRange()
	for _, p := range ports {
		if p < lo || p >= hi {
			t.Errorf("port %d outside %d..%d (below the kernel's ephemeral range)", p, lo, hi-1)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d picked but not bindable: %v", p, err)
		}
		ln.Close()
	}
}

// The kernel gives ephemeral ports to outbound connections: none of them
// may be one FreePorts returns.
func TestFreePortsAvoidTheKernelsEphemeralPorts(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skip("no ip_local_port_range:", err)
	}
	var start, end int
	if _, err := fmt.Sscan(string(b), &start, &end); err != nil {
		t.Fatal(err)
	}
	ports, err := FreePorts(50)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p >= start && p <= end {
			t.Errorf("port %d is in the ephemeral range %d..%d", p, start, end)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if p := ln.Addr().(*net.TCPAddr).Port; p < start || p > end {
		t.Fatalf("the kernel gave port %d outside %d..%d: the range read is not the one it uses", p, start, end)
	}
}

func TestNewCollectorPutsEveryListenerOnTheLoopbackPortsItReports(t *testing.T) {
	dir := t.TempDir()
	c, err := NewCollector(dir, []string{"shipped.yaml"}, "exporters: {}\n", map[string]string{"AWS_REGION": "eu-west-1", "MY_POD_IP": ""})
	if err != nil {
		t.Fatal(err)
	}
	override := filepath.Join(dir, "loopback.yaml")
	if want := []string{"--config=shipped.yaml", "--config=" + override}; !slices.Equal(c.Args, want) {
		t.Errorf("args %v, want %v", c.Args, want)
	}
	b, err := os.ReadFile(override)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{c.OTLPHTTP, c.OTLPGRPC, strings.TrimSuffix(strings.TrimPrefix(c.Health, "http://"), "/")} {
		if !strings.Contains(string(b), "endpoint: "+addr+"\n") {
			t.Errorf("override does not put a listener on %s:\n%s", addr, b)
		}
	}
	if !strings.HasSuffix(string(b), "exporters: {}\n") {
		t.Errorf("extra not appended:\n%s", b)
	}
	if !slices.Contains(c.Env, "AWS_REGION=eu-west-1") || !slices.Contains(c.Env, "HOME="+dir) {
		t.Errorf("env %v: want AWS_REGION overridden and HOME=%s", c.Env, dir)
	}
	for _, kv := range c.Env {
		if strings.HasPrefix(kv, "MY_POD_IP=") {
			t.Errorf("env %v: a \"\" value must remove the variable", c.Env)
		}
	}
}

func TestPollContextSaysWhyItStopped(t *testing.T) {
	never := func() (bool, error) { return false, nil }
	if err := PollContext(t.Context(), time.Millisecond, 20*time.Millisecond, never); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "within 20ms") {
		t.Errorf("timeout: %v, want the timeout named and context.DeadlineExceeded", err)
	}
	budget := errors.New("budget spent")
	parent, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(10*time.Millisecond, func() { cancel(budget) })
	if err := PollContext(parent, time.Millisecond, time.Minute, never); !errors.Is(err, budget) {
		t.Errorf("parent cancelled: %v, want its cause", err)
	}
	boom := errors.New("boom")
	if err := PollContext(t.Context(), time.Millisecond, time.Minute, func() (bool, error) { return false, boom }); err != boom {
		t.Errorf("cond error: %v, want it as is", err)
	}
	n := 0
	if err := PollContext(t.Context(), time.Millisecond, time.Minute, func() (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Errorf("met on the 3rd call: err %v after %d calls", err, n)
	}
}

func TestWaitOKStopsWhenTheProcessExits(t *testing.T) {
	done := make(chan struct{})
	close(done)
	err := WaitOK(t.Context(), nil, "http://127.0.0.1:1/", time.Minute, done)
	if err == nil || !strings.Contains(err.Error(), "exited before ready") {
		t.Errorf("WaitOK after exit: %v", err)
	}
}
