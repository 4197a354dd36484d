//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestFaultAMPKEDADownHoldsReplicas: the amp overlay at 8 in flight (4
// pods). KEDA's operator is killed (SIGKILL) for 2 minutes and started
// again; then its metrics adapter, the same. Either way the HPA cannot read
// the metric (the adapter asks the operator for every value): it reports
// ScalingActive False and, by its own rule, leaves the replicas as they are
// (KEDA's fallback cannot help: the operator computes it). Once the process
// is back the HPA reads again, with the replicas the load needs.
func TestFaultAMPKEDADownHoldsReplicas(t *testing.T) {
	ctx := scenario(t, 30*time.Minute)
	const load, down = 8, 2 * time.Minute
	want := int32(math.Ceil(float64(load) / httpTarget))
	lo, hi := want-1, want+1
	r := startHTTP(t, ctx, "amp", "", fmt.Sprintf("amp: %d in flight (%d pods); KEDA's operator, then its metrics adapter, killed for %s each", load, want, down), "local-e2e-windows")
	e, tl := r.e, r.tl
	const hpa = "keda-hpa-webapi"

	tl.Mark(fmt.Sprintf("load %d in flight", load))
	r.gen.start(load, false)
	began := time.Now()
	e.waitReplicasWithin(t, ctx, "webapi", 9*time.Minute, lo, hi, nil)
	e.holdReplicas(t, ctx, "webapi", signalDelay("amp"), lo, hi)

	for _, proc := range []string{"keda-operator", "keda-adapter"} {
		at, _ := e.replicas(ctx, "webapi")
		promise := fmt.Sprintf("the HPA keeps what it has (%d; no metric, no change)", at)
		if err := e.cluster.Kill(proc); err != nil {
			t.Fatal(err)
		}
		tl.Fault(proc + " SIGKILL")
		tl.Expect("pods", float64(at), float64(at), promise)
		killed := time.Now()
		row := faultRow{fault: proc + " SIGKILL, down " + dur(down), from: killed.Sub(began), promised: promise, noticed: -1, recovered: -1, messages: "-"}
		// From the HPA's notice on, the replicas must not move at all;
		// before it (the HPA still syncing with the last value it read) they
		// stay in the band.
		rmin, rmax := int32(math.MaxInt32), int32(0)
		held, moved := int32(-1), false
		_ = localproc.PollContext(ctx, time.Second, down, func() (bool, error) {
			n, ok := e.replicas(ctx, "webapi")
			if ok {
				rmin, rmax = min(rmin, n), max(rmax, n)
			}
			if row.noticed < 0 {
				if status, reason := e.hpaCondition(ctx, hpa, autoscalingv2.ScalingActive); status == corev1.ConditionFalse {
					row.noticed, held = time.Since(killed), n
					t.Logf("%s down: the HPA's ScalingActive False (%s) after %s, at %d replicas", proc, reason, row.noticed.Round(time.Second), n)
				}
			} else if ok && n != held {
				moved = true
			}
			return false, nil
		})
		if err := e.cluster.Restart(ctx, proc); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		row.to, row.during = restarted.Sub(began), fmt.Sprintf("replicas %d-%d", rmin, rmax)
		tl.Mark(proc + " restarted")
		tl.Expect("pods", float64(lo), float64(hi), fmt.Sprintf("⌈%d/%d⌉ ± 1", load, httpTarget))
		switch {
		case row.noticed < 0:
			t.Errorf("%s down for %s: the HPA never reported ScalingActive False; the fault did not reach it", proc, down)
		case moved || rmin < lo || rmax > hi:
			t.Errorf("%s down: replicas %d..%d (moved after the HPA lost its metric: %v); want the %d it had kept, in %d..%d", proc, rmin, rmax, moved, held, lo, hi)
		}
		err := localproc.PollContext(ctx, time.Second, 5*time.Minute, func() (bool, error) {
			n, ok := e.replicas(ctx, "webapi")
			status, _ := e.hpaCondition(ctx, hpa, autoscalingv2.ScalingActive)
			return ok && n >= lo && n <= hi && status == corev1.ConditionTrue, nil
		})
		if err != nil {
			t.Errorf("%s back: not %d..%d replicas with the HPA reading its metric: %v", proc, lo, hi, err)
		} else {
			row.recovered = time.Since(restarted)
		}
		tl.Mark("recovered")
		e.addFault(row)
		t.Logf("%s", fmt.Sprint(row.cells()))
	}
	r.gen.stop()
}

// hpaCondition is the status and reason of one of an HPA's conditions
// ("" when the HPA or the condition is not there).
func (e *env) hpaCondition(ctx context.Context, name string, typ autoscalingv2.HorizontalPodAutoscalerConditionType) (corev1.ConditionStatus, string) {
	hpa, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", ""
	}
	for _, c := range hpa.Status.Conditions {
		if c.Type == typ {
			return c.Status, c.Reason
		}
	}
	return "", ""
}
