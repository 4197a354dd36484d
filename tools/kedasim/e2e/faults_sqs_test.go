//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/sqsx"
	"github.com/keda-eks-samples/workloads/pkg/testutil/faultproxy"
	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/timeline"
)

// TestFaultSQSWorkerSQSFaultsLoseNothing: the sqs-worker overlay with every
// SQS call (KEDA's and the workers') through a fault proxy in front of the
// emulator. Two faults, one after the other:
//   - GetQueueAttributes answers 503 for 90 s while 200 messages drain at
//     15 replicas: KEDA cannot read the depth, the fallback
//     (currentReplicasIfHigher, 2) must hold the 15, and KEDA reads again
//     once it ends.
//   - SQS throttles (ThrottlingException, 1 call in 3, every operation)
//     while 200 more drain.
//
// Every message must be processed at least once (the workers' debug log
// names each one), none lost, none dead-lettered; duplicates are counted.
func TestFaultSQSWorkerSQSFaultsLoseNothing(t *testing.T) {
	ctx := scenario(t, 20*time.Minute)
	const batch, outage = 200, 90 * time.Second
	emu := sqstest.Start(t)
	q := emu.NewQueue(t, sqstest.WithVisibilityTimeout(60*time.Second))
	sqsProxy, err := faultproxy.Start(emu.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sqsProxy.Close)
	e := start(t, ctx)
	e.apply(t, ctx, "sqs-worker", e.localValues(t, map[string]string{
		"SQS_ENDPOINT":         sqsProxy.URL,
		"SQS_WORKER_QUEUE_URL": q.URL,
	}), "local-e2e-windows")
	// Debug logs name every message processed; one rolled-out pod first.
	e.kubectl(t, ctx, nil, "set", "env", "-n", namespace, "deployment/sqsworker", "LOG_LEVEL=debug")
	e.waitRolledOut(t, ctx, "sqsworker", 3*time.Minute)
	e.waitHPA(t, ctx, "keda-hpa-sqsworker", 2*time.Minute)

	tl := timeline.New("sqs-worker: GetQueueAttributes 503 for 90 s at 15 replicas, then SQS throttling 1 call in 3",
		timeline.Series{Name: "replicas", Panel: "pods"}, timeline.Series{Name: "visible", Panel: "queue"},
		timeline.Series{Name: "in flight", Panel: "queue"})
	readCtx, readDone := context.WithCancel(context.WithoutCancel(ctx))
	stop := e.sample(ctx, tl, func() []float64 {
		n, ok := e.replicas(readCtx, "sqsworker")
		if !ok {
			return nil
		}
		visible, inFlight := emu.Depth(readCtx, t, q.URL)
		return []float64{float64(n), float64(visible), float64(inFlight)}
	})
	defer func() {
		stop()
		readDone()
		saveTimeline(t, tl, e.out)
	}()

	// 1. GetQueueAttributes down at 15 replicas, with a backlog.
	began := time.Now()
	ids := send(t, ctx, emu, q.URL, bodies(t, batch))
	tl.Mark(fmt.Sprintf("%d messages sent", batch))
	e.waitReplicas(t, ctx, "sqsworker", 5*time.Minute, func(n int32) bool { return n == 15 })
	fb := e.fallbackOf(t, ctx, "sqsworker")
	hold, promise := fb.holds(15)
	f := faultproxy.Unavailable("SQS GetQueueAttributes")
	f.Match = faultproxy.AWSOperation("GetQueueAttributes")
	sqsProxy.Set(f)
	faultStart := time.Now()
	tl.Fault(f.Name)
	tl.Expect("pods", float64(hold), float64(hold), "the fallback: "+promise)
	visible, inFlight := emu.Depth(ctx, t, q.URL)
	t.Logf("%s at 15 replicas with %d visible, %d in flight; the fallback promises %s", f.Name, visible, inFlight, promise)
	row := faultRow{fault: f.Name + ", " + dur(outage), from: faultStart.Sub(began), promised: promise, noticed: -1, recovered: -1}
	rmin, rmax := int32(math.MaxInt32), int32(0)
	_ = localproc.PollContext(ctx, time.Second, outage, func() (bool, error) {
		if n, ok := e.replicas(ctx, "sqsworker"); ok {
			rmin, rmax = min(rmin, n), max(rmax, n)
		}
		if row.noticed < 0 && e.fallbackActive(ctx, t, "sqsworker") {
			row.noticed = time.Since(faultStart)
		}
		return false, nil
	})
	sqsProxy.Set(nil)
	faultEnd := time.Now()
	tl.Mark("fault removed")
	row.to, row.during = faultEnd.Sub(began), fmt.Sprintf("replicas %d-%d", rmin, rmax)
	switch {
	case row.noticed < 0:
		t.Errorf("KEDA's Fallback condition never became True in %s of %s: the fault did not reach the trigger", outage, f.Name)
	case rmin < hold || rmin <= 1:
		t.Errorf("replicas fell to %d during the outage; the fallback promises %s", rmin, promise)
	}
	if err := localproc.PollContext(ctx, time.Second, 2*time.Minute, func() (bool, error) {
		return !e.fallbackActive(ctx, t, "sqsworker"), nil
	}); err != nil {
		t.Errorf("KEDA still in fallback after %s was back: %v", f.Name, err)
	} else {
		row.recovered = time.Since(faultEnd)
	}
	emu.WaitDepth(t, q.URL, sqstest.Empty, 5*time.Minute)
	tl.Mark("queue empty")

	// 2. Throttling while 200 more drain.
	throttle := &faultproxy.Fault{
		Name: "SQS ThrottlingException, 1 call in 3", Status: http.StatusBadRequest, Every: 3,
		ContentType: "application/x-amz-json-1.0",
		Body:        `{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded (faultproxy)"}`,
	}
	sqsProxy.Set(throttle)
	throttled := time.Now()
	tl.Fault(throttle.Name)
	ids = append(ids, send(t, ctx, emu, q.URL, bodies(t, batch))...)
	tl.Mark(fmt.Sprintf("%d more messages sent", batch))
	trow := faultRow{fault: throttle.Name + ", until drained", from: throttled.Sub(began), promised: "every message processed, none lost or dead-lettered", noticed: -1, recovered: -1}
	tmax := int32(0)
	if err := localproc.PollContext(ctx, time.Second, 6*time.Minute, func() (bool, error) {
		if n, ok := e.replicas(ctx, "sqsworker"); ok {
			tmax = max(tmax, n)
		}
		v, f := emu.Depth(ctx, t, q.URL)
		return v+f == 0, nil
	}); err != nil {
		t.Errorf("the queue did not drain under throttling: %v", err)
	}
	sqsProxy.Set(nil)
	_, failed := sqsProxy.Counts()
	trow.to, trow.during, trow.recovered = time.Since(began), fmt.Sprintf("replicas up to %d, %d calls throttled", tmax, failed), time.Since(throttled)
	tl.Mark("drained, throttling off")

	// Accounting over both faults.
	missing, twice := sqstest.Tally(ids, e.processedIDs(t))
	dv, df := emu.Depth(ctx, t, q.DLQURL)
	msgs := fmt.Sprintf("%d processed / %d lost / %d twice / %d DLQ", len(ids)-missing, missing, twice, dv+df)
	row.messages, trow.messages = msgs, msgs
	if missing > 0 || dv+df != 0 {
		t.Errorf("of %d messages: %d never processed, %d dead-lettered", len(ids), missing, dv+df)
	}
	t.Logf("%d messages: %s", len(ids), msgs)
	e.addFault(row)
	e.addFault(trow)
}

// send enqueues bodies straight to the emulator (sqsx.Send, the services'
// own batch sender) and returns their MessageIds.
func send(t *testing.T, ctx context.Context, emu *sqstest.Emulator, queueURL string, bodies []string) []string {
	t.Helper()
	res, err := sqsx.Send(ctx, emu.Client(t), queueURL, bodies, 4)
	if err != nil {
		t.Fatalf("send %d messages: %v (failed: %v)", len(bodies), err, res.Failed)
	}
	return res.MessageIDs
}

// bodies are n distinct message bodies named after the test.
func bodies(t *testing.T, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = t.Name() + "-" + strconv.Itoa(i)
	}
	return out
}

// processedIDs counts, by message id, the "processed" records in every
// sqsworker pod's log (LOG_LEVEL=debug).
func (e *env) processedIDs(t *testing.T) map[string]int {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(e.out, "pods", namespace+"_sqsworker-*_sqsworker.log"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no sqsworker logs in %s (%v)", e.out, err)
	}
	var logs [][]byte
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, b)
	}
	return sqstest.ProcessedIDs(logs...)
}

// waitRolledOut waits until a Deployment's pods are all of its latest
// template, ready, and no older one is left.
func (e *env) waitRolledOut(t *testing.T, ctx context.Context, name string, timeout time.Duration) {
	t.Helper()
	if err := localproc.PollContext(ctx, 500*time.Millisecond, timeout, func() (bool, error) {
		d, err := e.client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil || d.Spec.Replicas == nil {
			return false, nil
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == *d.Spec.Replicas &&
			s.Replicas == *d.Spec.Replicas && s.ReadyReplicas == *d.Spec.Replicas, nil
	}); err != nil {
		t.Fatalf("deployment %s not rolled out: %v", name, err)
	}
}
