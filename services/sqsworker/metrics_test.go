package main

import (
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/testutil/otlptest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

// TestMetricsReportWhatTheWorkerDid checks sqsworker's own metrics on the
// OTLP wire after it drains 23 messages: every one processed, none failed or
// in flight, one duration observation each, and the SQS calls by operation
// (three SendMessageBatch from the test are not the worker's).
func TestMetricsReportWhatTheWorkerDid(t *testing.T) {
	recv := otlptest.New(t)
	recv.Setenv(t, "50")
	emu := sqstest.Start(t)
	q := emu.NewQueue(t)
	svctest.Start(t, run, workerEnv(t, emu, q, nil))
	send(t, emu, q, 23)
	emu.WaitDepth(t, q.URL, sqstest.Empty, 20*time.Second)

	want := []struct {
		name  string
		attrs map[string]string
		check func(float64) bool
	}{
		{"sqsworker.messages.processed", nil, func(v float64) bool { return v == 23 }},
		{"messaging.process.duration", nil, func(v float64) bool { return v == 23 }}, // observations
		{"sqsworker.messages.in_flight", nil, func(v float64) bool { return v == 0 }},
		{"sqsworker.sqs.calls", map[string]string{"operation": "ReceiveMessage"}, func(v float64) bool { return v >= 3 }},
		{"sqsworker.sqs.calls", map[string]string{"operation": "DeleteMessageBatch"}, func(v float64) bool { return v >= 3 && v <= 12 }}, // batched, not one per message
	}
	for _, w := range want {
		recv.Await(t, 20*time.Second, serviceName, w.name, w.attrs, w.check)
	}
	if _, ok := recv.Value(serviceName, "sqsworker.messages.failed", nil); ok {
		t.Errorf("sqsworker.messages.failed exported though nothing failed")
	}
}
