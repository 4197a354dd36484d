//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/faultproxy"
)

// The fault scenarios (make e2e-faults; make e2e runs them too): one
// overlay under a steady load, one fault on the way from the signal to
// KEDA, then the fault removed. Each records a summary row: the fault, the
// replicas during it against what the ScaledObject's fallback promises, and
// the time to recover. They run with components/local-e2e-windows, whose
// scale-down window (75 s amp, 180 s CloudWatch) is shorter than the
// outage: with the shipped 300 s window a wrong fallback shows the same
// drop, 2 to 4 minutes later.

// faultRow is one injected fault as measured.
type faultRow struct {
	fault     string
	from, to  time.Duration // since the load began
	promised  string
	during    string        // replicas min-max while the fault lasted
	noticed   time.Duration // fault start to KEDA's Fallback condition True, or the HPA's ScalingActive False; -1: never
	recovered time.Duration // fault end to the trigger read again and the replicas the load needs; -1: not measured
	messages  string        // processed / lost / duplicated / dead-lettered; "-" for HTTP
}

var faultColumns = []string{"fault", "from..to", "promised", "during", "noticed after", "recovered after", "messages"}

func (f faultRow) cells() []string {
	return []string{f.fault, dur(f.from) + ".." + dur(f.to), f.promised, f.during, dur(f.noticed), dur(f.recovered), f.messages}
}

// outage is an HTTP overlay under load whose trigger's reads fail for d.
type outage struct {
	overlay string
	load    int  // in flight, or requests a second (rate)
	rate    bool // load is requests per second
	fault   *faultproxy.Fault
	d       time.Duration
	// fallback replaces the shipped spec.fallback (JSON): the
	// counterexample, which must drop to its replicas under load.
	fallback string
}

// TestFaultAMPPrometheusDownHoldsReplicas: the amp overlay at 8 in flight
// (4 pods); Prometheus' query API answers 503 for 3 minutes. The shipped
// fallback (currentReplicasIfHigher, 2) keeps the 4 pods the load needs.
func TestFaultAMPPrometheusDownHoldsReplicas(t *testing.T) {
	runOutage(t, outage{overlay: "amp", load: 8, fault: faultproxy.Unavailable("Prometheus query API"), d: 3 * time.Minute})
}

// TestFaultAMPPrometheusDownSeedsFallbackDrops is the counterexample: the
// seeds' fallback (static, 2 replicas) under the same outage takes the 4
// pods that 8 in flight need down to 2 once the scale-down window passes.
func TestFaultAMPPrometheusDownSeedsFallbackDrops(t *testing.T) {
	runOutage(t, outage{overlay: "amp", load: 8, fault: faultproxy.Unavailable("Prometheus query API"), d: 3 * time.Minute,
		fallback: `{"failureThreshold":3,"replicas":2,"behavior":"static"}`})
}

// TestFaultSidecarCloudWatchDownHoldsReplicas: the sidecar overlay at 8 in
// flight (4 pods); the CloudWatch stand-in answers 503 to KEDA's
// GetMetricData (the pods' PutLogEvents still land) for 5 minutes, longer
// than the local 180 s window plus the failures KEDA counts first.
func TestFaultSidecarCloudWatchDownHoldsReplicas(t *testing.T) {
	f := faultproxy.Unavailable("CloudWatch GetMetricData")
	f.Match = faultproxy.AWSOperation("GetMetricData")
	runOutage(t, outage{overlay: "sidecar", load: 8, fault: f, d: 5 * time.Minute})
}

// fallbackSpec is a ScaledObject's spec.fallback as applied.
type fallbackSpec struct {
	threshold, replicas int64
	behavior            string
}

func (e *env) fallbackOf(t *testing.T, ctx context.Context, name string) fallbackSpec {
	t.Helper()
	so, err := e.kedaClient(t).Resource(scaledObjects).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fb, ok, _ := unstructured.NestedMap(so.Object, "spec", "fallback")
	if !ok {
		t.Fatalf("ScaledObject %s has no fallback", name)
	}
	f := fallbackSpec{behavior: "static"} // KEDA's default
	f.threshold, _, _ = unstructured.NestedInt64(fb, "failureThreshold")
	f.replicas, _, _ = unstructured.NestedInt64(fb, "replicas")
	if b, ok, _ := unstructured.NestedString(fb, "behavior"); ok && b != "" {
		f.behavior = b
	}
	return f
}

// holds is the replica count the fallback holds when at run (KEDA's
// pkg/fallback doFallback), and what that is in words.
func (f fallbackSpec) holds(at int32) (int32, string) {
	r := int32(f.replicas)
	switch f.behavior {
	case "static":
		return r, fmt.Sprintf("%d (static)", r)
	case "currentReplicas":
		return at, fmt.Sprintf("%d (current)", at)
	case "currentReplicasIfHigher":
		return max(at, r), fmt.Sprintf("max(%d current, %d) = %d", at, r, max(at, r))
	case "currentReplicasIfLower":
		return min(at, r), fmt.Sprintf("min(%d current, %d) = %d", at, r, min(at, r))
	}
	return -1, f.behavior
}

// fallbackActive is whether KEDA's Fallback condition on the ScaledObject
// is True.
func (e *env) fallbackActive(ctx context.Context, t *testing.T, name string) bool {
	so, err := e.kedaClient(t).Resource(scaledObjects).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(so.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Fallback" {
			return m["status"] == "True"
		}
	}
	return false
}

// runOutage brings an HTTP overlay to what the load needs, lets the signal
// settle, fails the trigger's reads for o.d and checks, every second, the
// replicas against the fallback: held at what the load needs (never the
// minimum) with the shipped fallback; down to its replicas with the
// counterexample's. Then the fault goes and the replicas must come back to
// what the load needs with the trigger reading again.
func runOutage(t *testing.T, o outage) {
	ctx := scenario(t, 40*time.Minute)
	unit := unitOf(o.rate)
	want := int32(math.Ceil(float64(o.load) / httpTarget))
	lo, hi := want-1, want+1
	r := startHTTP(t, ctx, o.overlay, "", fmt.Sprintf("%s: %d %s (%d pods), %s for %s", o.overlay, o.load, unit, want, o.fault.Name, o.d), "local-e2e-windows")
	e, tl := r.e, r.tl
	if o.fallback != "" {
		patch := fmt.Sprintf(`{"spec":{"fallback":%s}}`, o.fallback)
		if _, err := e.kedaClient(t).Resource(scaledObjects).Namespace(namespace).Patch(ctx, "webapi", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fb := e.fallbackOf(t, ctx, "webapi")
	_, window := e.hpaSettings(t, ctx, "keda-hpa-webapi")
	t.Logf("%s: fallback %+v, scale-down window %s", o.overlay, fb, window)

	tl.Mark(fmt.Sprintf("load %d %s", o.load, unit))
	r.gen.start(o.load, o.rate)
	began := time.Now()
	e.waitReplicasWithin(t, ctx, "webapi", 9*time.Minute, lo, hi, nil)
	e.holdReplicas(t, ctx, "webapi", signalDelay(o.overlay), lo, hi)
	at, _ := e.replicas(ctx, "webapi")
	hold, promise := fb.holds(at)

	tl.Fault(o.fault.Name)
	tl.Expect("pods", float64(hold), float64(hold), "the fallback: "+promise)
	r.signal.Set(o.fault)
	faultStart := time.Now()
	row := faultRow{fault: o.fault.Name, from: faultStart.Sub(began), promised: promise, noticed: -1, recovered: -1, messages: "-"}
	rmin, rmax := int32(math.MaxInt32), int32(0)
	_ = localproc.PollContext(ctx, time.Second, o.d, func() (bool, error) {
		if n, ok := e.replicas(ctx, "webapi"); ok {
			rmin, rmax = min(rmin, n), max(rmax, n)
		}
		if row.noticed < 0 && e.fallbackActive(ctx, t, "webapi") {
			row.noticed = time.Since(faultStart)
			t.Logf("%s: KEDA's Fallback condition True %s after the fault began", o.overlay, row.noticed.Round(time.Second))
		}
		return false, nil
	})
	r.signal.Set(nil)
	faultEnd := time.Now()
	passed, failed := r.signal.Counts()
	row.to, row.during = faultEnd.Sub(began), fmt.Sprintf("%d-%d", rmin, rmax)
	tl.Mark("fault removed")
	tl.Expect("pods", float64(lo), float64(hi), fmt.Sprintf("⌈%d/%d⌉ ± 1", o.load, httpTarget))
	t.Logf("%s: %s for %s (%d requests failed, %d passed in all): replicas %d..%d, the fallback promises %s",
		o.overlay, o.fault.Name, o.d, failed, passed, rmin, rmax, promise)

	switch {
	case row.noticed < 0:
		t.Errorf("KEDA's Fallback condition never became True in %s of %s: the fault did not reach the trigger", o.d, o.fault.Name)
	case o.fallback == "" && (rmin < hold || rmin <= 1):
		t.Errorf("replicas fell to %d during the outage; the shipped fallback promises %s", rmin, promise)
	case o.fallback == "" && rmax > max(hold, hi):
		t.Errorf("replicas rose to %d during the outage; the shipped fallback promises %s", rmax, promise)
	case o.fallback != "" && rmin != hold:
		t.Errorf("the counterexample's fallback (%s) went down to %d, not to its %d: the outage did not outlast the window %s", o.fallback, rmin, hold, window)
	}

	// Recovered: the trigger reads again (no fallback) and the replicas
	// are what the load needs.
	err := localproc.PollContext(ctx, time.Second, window+signalDelay(o.overlay)+2*time.Minute, func() (bool, error) {
		n, ok := e.replicas(ctx, "webapi")
		return ok && n >= lo && n <= hi && !e.fallbackActive(ctx, t, "webapi"), nil
	})
	if err != nil {
		t.Errorf("not back to %d..%d replicas with the trigger reading: %v", lo, hi, err)
	} else {
		row.recovered = time.Since(faultEnd)
	}
	e.addFault(row)
	tl.Mark("recovered")
	r.gen.stop()
	t.Logf("%s: %s", o.overlay, fmt.Sprint(row.cells()))
}
