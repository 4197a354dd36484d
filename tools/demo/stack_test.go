package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

// The test binary doubles as the processes the stack stops: with
// DEMO_TEST_CHILD set it runs child() instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("DEMO_TEST_CHILD"); mode != "" {
		os.Exit(child(mode, os.Getenv("DIR"), os.Getenv("NAME")))
	}
	os.Exit(m.Run())
}

// child is a process that says it is ready, then on SIGTERM:
//   - "client": marks term-NAME, waits until every client (CLIENTS of them)
//     has been sent SIGTERM, marks exit-NAME and exits 0. Stopped one at a
//     time, the first never exits (it is killed when the grace runs out).
//   - "backing": exits 0 only if every client has already exited, else 3.
//   - "stubborn": ignores it.
func child(mode, dir, name string) int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	touch := func(what string) { _ = os.WriteFile(filepath.Join(dir, what+"-"+name), nil, 0o644) }
	count := func(what string) int { m, _ := filepath.Glob(filepath.Join(dir, what+"-*")); return len(m) }
	clients, _ := strconv.Atoi(os.Getenv("CLIENTS"))
	touch("ready")
	<-term
	switch mode {
	case "client":
		touch("term")
		for count("term") < clients {
			time.Sleep(10 * time.Millisecond)
		}
		touch("exit")
		return 0
	case "backing":
		if count("exit") == clients {
			return 0
		}
		return 3
	default:
		select {}
	}
}

// newStack returns a stack whose binary is this test executable, logging to
// a temporary directory, with every process killed at the end of the test.
func newStack(t *testing.T, grace time.Duration) (*stack, *localproc.SyncBuffer, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := &localproc.SyncBuffer{}
	st := &stack{bin: filepath.Dir(self), logs: t.TempDir(), out: out, grace: grace}
	t.Cleanup(func() {
		for _, p := range st.procs {
			_ = p.Cmd.Process.Kill()
			<-p.Done()
		}
	})
	return st, out, filepath.Base(self)
}

// startChild starts a child in mode and waits until it handles SIGTERM.
func startChild(t *testing.T, st *stack, self, dir, name, mode string, clients int) *proc {
	t.Helper()
	p, err := st.start(self, name, map[string]string{
		"DEMO_TEST_CHILD": mode, "DIR": dir, "NAME": name, "CLIENTS": strconv.Itoa(clients)})
	if err != nil {
		t.Fatal(err)
	}
	if err := localproc.PollContext(t.Context(), 10*time.Millisecond, 30*time.Second, func() (bool, error) {
		if _, err := os.Stat(filepath.Join(dir, "ready-"+name)); err == nil {
			return true, nil
		}
		if p.Exited() {
			return false, errors.New("exited")
		}
		return false, nil
	}); err != nil {
		t.Fatalf("%s not ready (%v): %s", name, err, p.status())
	}
	return p
}

func TestStopAllStopsClientsTogetherThenBackingServices(t *testing.T) {
	st, out, self := newStack(t, 20*time.Second)
	dir := t.TempDir()
	const clients = 4
	startChild(t, st, self, dir, "emulator", "backing", clients).backing = true
	for i := range clients {
		startChild(t, st, self, dir, fmt.Sprintf("worker-%d", i), "client", clients)
	}
	st.stopAll()

	got := out.String()
	t.Logf("output:\n%s", got)
	if !strings.Contains(got, "stopping 5 processes") ||
		!strings.Contains(got, "SIGTERM to worker-0, worker-1, worker-2, worker-3\n") {
		t.Errorf("output does not say what is being stopped")
	}
	// Every worker waited for all the others to get SIGTERM: they were sent
	// it together. The emulator exits 0 only if they had all exited first.
	for _, name := range []string{"worker-0", "worker-1", "worker-2", "worker-3", "emulator"} {
		if !strings.Contains(got, fmt.Sprintf("stopped %-15s exit 0\n", name)) {
			t.Errorf("%s did not exit 0", name)
		}
	}
	if i, j := strings.LastIndex(got, "stopped worker-"), strings.Index(got, "SIGTERM to emulator"); i < 0 || j < i {
		t.Errorf("emulator sent SIGTERM before the workers were stopped")
	}
	if len(st.procs) != 0 {
		t.Errorf("%d processes left on the stack", len(st.procs))
	}
}

func TestSecondCtrlCKillsWhatIsStillStopping(t *testing.T) {
	st, out, self := newStack(t, time.Hour)
	dir := t.TempDir()
	p := startChild(t, st, self, dir, "stubborn", "stubborn", 0)
	hurry := make(chan os.Signal, 1)
	st.hurry = hurry
	done := make(chan struct{})
	go func() { st.stopAll(); close(done) }()

	if err := localproc.PollContext(t.Context(), 10*time.Millisecond, 30*time.Second, func() (bool, error) {
		return strings.Contains(out.String(), "SIGTERM to stubborn"), nil
	}); err != nil {
		t.Fatalf("stopAll did not start (%v): %q", err, out.String())
	}
	hurry <- os.Interrupt
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a second Ctrl-C did not end stopAll")
	}
	if !strings.Contains(out.String(), "stopped stubborn        signal: killed") || p.Err() == nil {
		t.Errorf("stubborn was not killed: %q", out.String())
	}
}
