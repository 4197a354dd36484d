package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

// analyzer is the real result analyzer (services/resultanalyzer), built from
// this repository and run as a process on loopback for the test's lifetime.
type analyzer struct {
	URL    string
	Output *svctest.SyncBuffer
}

// analyzerEvent is the part of GET /events the tests read.
type analyzerEvent struct {
	Seq       int       `json:"seq"`
	Kind      string    `json:"kind"`
	JobID     string    `json:"jobId"`
	MessageID string    `json:"messageId"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Outcome   string    `json:"outcome"`
	Detail    string    `json:"detail"`
}

// startAnalyzer builds services/resultanalyzer with the workspace's go (the
// build cache makes repeat builds quick) and runs it until t ends.
func startAnalyzer(t *testing.T) *analyzer {
	t.Helper()
	root := repoRoot(t)
	goBin, err := exec.LookPath("go") // go test puts GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "resultanalyzer")
	build := exec.Command(goBin, "build", "-buildvcs=false", "-o", bin, "./services/resultanalyzer")
	build.Dir = root
	build.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build resultanalyzer: %v\n%s", err, out)
	}

	port := svctest.FreePort(t)
	a := &analyzer{URL: "http://127.0.0.1:" + strconv.Itoa(port), Output: &svctest.SyncBuffer{}}
	cmd := exec.Command(bin)
	cmd.Env = []string{"HOST=127.0.0.1", "PORT=" + strconv.Itoa(port), "SHUTDOWN_DELAY=0s",
		"LOG_FORMAT=text", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdout, cmd.Stderr = a.Output, a.Output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start resultanalyzer: %v", err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{})
	go func() { err := cmd.Wait(); exited <- err; close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("resultanalyzer output:\n%s", a.Output)
		}
	})
	if err := svctest.WaitReady(a.URL, 30*time.Second, exited); err != nil {
		t.Fatalf("resultanalyzer: %v\n%s", err, a.Output)
	}
	return a
}

// Events returns every event the analyzer recorded for the given message ids.
func (a *analyzer) Events(t *testing.T, messageIDs ...string) []analyzerEvent {
	t.Helper()
	resp, err := http.Get(a.URL + "/events")
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	defer resp.Body.Close()
	var all []analyzerEvent
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	want := map[string]bool{}
	for _, id := range messageIDs {
		want[id] = true
	}
	var out []analyzerEvent
	for _, e := range all {
		if want[e.MessageID] {
			out = append(out, e)
		}
	}
	return out
}

// repoRoot is the directory holding go.work, at or above the working
// directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatal(errors.New("no go.work at or above " + wd))
		}
	}
}

// waitOutput polls p's output until it contains s.
func waitOutput(t *testing.T, p *svctest.Process, s string) {
	t.Helper()
	err := svctest.Poll(60*time.Second, func() (bool, error) {
		if strings.Contains(p.Output.String(), s) {
			return true, nil
		}
		select {
		case <-p.Done():
			if strings.Contains(p.Output.String(), s) { // written just before exit
				return true, nil
			}
			return false, fmt.Errorf("process exited before logging %q", s)
		default:
			return false, nil
		}
	})
	if err != nil {
		t.Fatalf("%v; output:\n%s", err, p.Output)
	}
}
