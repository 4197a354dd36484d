//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keda-eks-samples/workloads/pkg/testutil/sqstest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/timeline"
)

// TestSQSWorkerScalesToTheQueueAndBack: the sqs-worker overlay on the local
// control plane. 200 messages arrive through the worker's own POST /send
// (what loadtest/send.js does); KEDA's aws-sqs-queue scaler reads the
// emulator's depth (visible + in flight, queueLength 5), the real HPA
// controller scales the Deployment to min(15, ⌈depth/5⌉) = 15 at the
// shipped scale-up rate, the runner's sqsworker processes drain the queue,
// and the replicas return to the minimum, 1. Every message is deleted after
// its work (the worker deletes only then) and none reaches the DLQ.
func TestSQSWorkerScalesToTheQueueAndBack(t *testing.T) {
	ctx := scenario(t, 12*time.Minute)
	emu := sqstest.Start(t)
	q := emu.NewQueue(t, sqstest.WithVisibilityTimeout(60*time.Second))
	e := start(t, ctx)

	e.apply(t, ctx, "sqs-worker", e.localValues(t, map[string]string{
		"SQS_ENDPOINT":         emu.Endpoint,
		"SQS_WORKER_QUEUE_URL": q.URL,
	}), "local-e2e-windows")
	applied := time.Now()

	tl := timeline.New("sqs-worker: 200 messages, queueLength 5, replicas 1..15",
		timeline.Series{Name: "replicas", Panel: "pods"}, timeline.Series{Name: "ready", Panel: "pods"},
		timeline.Series{Name: "hpa desired", Panel: "pods"}, timeline.Series{Name: "visible", Panel: "queue"},
		timeline.Series{Name: "in flight", Panel: "queue"})
	sampleStop := e.sample(ctx, tl, func() []float64 {
		d, err := e.client.AppsV1().Deployments(namespace).Get(ctx, "sqsworker", metav1.GetOptions{})
		if err != nil {
			return nil
		}
		var desired float64 = -1
		if hpa, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, "keda-hpa-sqsworker", metav1.GetOptions{}); err == nil {
			desired = float64(hpa.Status.DesiredReplicas)
		}
		visible, inFlight := emu.Depth(ctx, t, q.URL)
		return []float64{float64(*d.Spec.Replicas), float64(d.Status.ReadyReplicas), desired, float64(visible), float64(inFlight)}
	})
	defer func() {
		sampleStop()
		saveTimeline(t, tl, e.out)
	}()

	// One ready worker, as the ScaledObject's minimum; the HPA KEDA made.
	worker := e.waitEndpoints(t, ctx, "app.kubernetes.io/name=sqsworker", 1, 2*time.Minute)
	e.waitHPA(t, ctx, "keda-hpa-sqsworker", 2*time.Minute)
	t.Logf("sqs-worker applied and ready in %s", time.Since(applied).Round(time.Second))

	tl.Mark("POST /send 200")
	tl.Expect("pods", 15, 15, "15, the maximum, while the queue holds over 15 × 5")
	sent := time.Now()
	status, body := post(t, worker[0]+"/send", `{"Messages": 200}`)
	if status != http.StatusOK || !strings.Contains(body, `"sent":200`) {
		t.Fatalf("POST /send: %d %s", status, body)
	}

	// Up to the maximum while the queue holds more than 15 × 5.
	e.waitReplicas(t, ctx, "sqsworker", 5*time.Minute, func(replicas int32) bool {
		if replicas > 1 {
			e.scaledOut(sent)
		}
		return replicas == 15
	})
	tl.Mark("15 replicas")
	t.Logf("first scale-out %s after the send; 15 replicas after %s", e.firstScaleOut().Round(time.Second), time.Since(sent).Round(time.Second))

	// Drained by the workers, then back to the minimum.
	emu.WaitDepth(t, q.URL, sqstest.Empty, 5*time.Minute)
	tl.Mark("queue empty")
	tl.Expect("pods", 1, 1, "back to the minimum, 1")
	drained := time.Since(sent)
	e.waitReplicas(t, ctx, "sqsworker", 5*time.Minute, func(replicas int32) bool { return replicas == 1 })
	tl.Mark("back to 1")
	if v, f := emu.Depth(ctx, t, q.DLQURL); v+f != 0 {
		t.Errorf("DLQ holds %d messages, want 0", v+f)
	}
	if max := tl.Max(0); max != 15 {
		t.Errorf("replicas peaked at %g, want 15 (maxReplicaCount)", max)
	}
	t.Logf("queue drained %s after the send; back to 1 replica after %s; whole run %s",
		drained.Round(time.Second), time.Since(sent).Round(time.Second), time.Since(e.started).Round(time.Second))
}
