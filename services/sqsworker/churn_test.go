package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

// processedIDs counts the processed message ids in the workers' logs.
func processedIDs(outputs ...*localproc.SyncBuffer) map[string]int {
	logs := make([][]byte, len(outputs))
	for i, out := range outputs {
		logs[i] = []byte(out.String())
	}
	return sqstest.ProcessedIDs(logs...)
}

// TestChurnLosesNothing drains 500 messages with three sqsworker binaries
// (built from this package, run as separate processes) while one is
// SIGKILLed, one SIGTERMed and a fresh one started: every message is
// processed at least once, nothing is left in flight or dead-lettered.
// Duplicates are expected (the killed worker's finished-but-undeleted
// messages come back) and are counted, not forbidden; `go test -v` prints
// the count.
func TestChurnLosesNothing(t *testing.T) {
	bin := svctest.Build(t, "services/sqsworker")
	emu := sqstest.Start(t)
	q := emu.NewQueue(t, sqstest.WithMaxReceiveCount(10), sqstest.WithVisibilityTimeout(3*time.Second))
	ids := send(t, emu, q, 500)

	env := func() map[string]string {
		return workerEnv(t, emu, q, map[string]string{
			"LOG_FORMAT": "json", "WORKER_CONCURRENCY": "4",
			"PROCESS_MIN_DELAY": "40ms", "PROCESS_MAX_DELAY": "120ms",
			"SQS_VISIBILITY_TIMEOUT": "3s", "DELETE_FLUSH_INTERVAL": "200ms", "SHUTDOWN_TIMEOUT": "5s",
		})
	}
	var workers []*svctest.Process
	for range 3 {
		workers = append(workers, svctest.StartBinary(t, bin, env()))
	}
	outputs := func() []*localproc.SyncBuffer {
		var o []*localproc.SyncBuffer
		for _, w := range workers {
			o = append(o, w.Output)
		}
		return o
	}
	waitProcessed := func(n int) {
		t.Helper()
		if err := localproc.Poll(60*time.Second, func() (bool, error) { return len(processedIDs(outputs()...)) >= n, nil }); err != nil {
			t.Fatalf("fewer than %d processed: %v", n, err)
		}
	}

	waitProcessed(100)
	workers[0].Signal(t, syscall.SIGKILL)
	waitProcessed(200)
	workers[1].Signal(t, syscall.SIGTERM)
	if code := workers[1].Wait(t, 15*time.Second); code != 0 {
		t.Fatalf("SIGTERMed worker exit %d:\n%s", code, workers[1].Output)
	}
	workers = append(workers, svctest.StartBinary(t, bin, env()))

	emu.WaitDepth(t, q.URL, sqstest.Empty, 60*time.Second)
	seen := processedIDs(outputs()...)
	missing, dups := sqstest.Tally(ids, seen)
	if missing > 0 {
		t.Fatalf("%d of %d messages never processed", missing, len(ids))
	}
	if v, f := emu.Depth(context.Background(), t, q.DLQURL); v+f != 0 {
		t.Fatalf("%d messages dead-lettered", v+f)
	}
	t.Logf("churn: %d messages, %d distinct processed, %d duplicate deliveries processed (SIGKILL: finished but not yet deleted)", len(ids), len(seen), dups)
}
