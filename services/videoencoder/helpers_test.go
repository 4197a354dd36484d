package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/jobreport"
	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

// analyzer is the real result analyzer (services/resultanalyzer), built from
// this repository and run as a process on loopback for the test's lifetime.
type analyzer struct {
	URL    string
	Output *localproc.SyncBuffer
}

// analyzerEvent is the part of GET /events the tests read: the report the
// job sent, as the analyzer recorded it.
type analyzerEvent struct {
	Seq  int    `json:"seq"`
	Kind string `json:"kind"`
	jobreport.Report
}

// startAnalyzer builds services/resultanalyzer and runs it until t ends.
func startAnalyzer(t *testing.T) *analyzer {
	t.Helper()
	bin := svctest.Build(t, "services/resultanalyzer")
	env := svctest.Env(t, map[string]string{"LOG_LEVEL": "info"})
	a := &analyzer{URL: "http://127.0.0.1:" + env["PORT"]}
	p := svctest.StartBinary(t, bin, env)
	a.Output = p.Output
	t.Cleanup(func() {
		p.Signal(t, syscall.SIGTERM)
		p.Wait(t, 20*time.Second)
		if t.Failed() {
			t.Logf("resultanalyzer output:\n%s", a.Output)
		}
	})
	p.WaitReady(t, a.URL)
	return a
}

// Events returns every event the analyzer recorded for the given message ids.
func (a *analyzer) Events(t *testing.T, messageIDs ...string) []analyzerEvent {
	t.Helper()
	var all []analyzerEvent
	if err := svctest.GetJSON(a.URL+"/events", &all); err != nil {
		t.Fatal(err)
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

// waitOutput polls p's output until it contains s.
func waitOutput(t *testing.T, p *svctest.Process, s string) {
	t.Helper()
	err := localproc.Poll(60*time.Second, func() (bool, error) {
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
