//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/cwtest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/faultproxy"
	"github.com/keda-eks-samples/workloads/pkg/testutil/proctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/timeline"
)

// Every webapi overlay's trigger asks for ⌈L/2⌉ pods, within 1..10: the
// in-flight triggers (amp, sidecar, gateway) for L requests in flight on
// average (busy seconds per second, Little's law), cloudwatch-direct's for
// L requests per second. webapi answers as shipped, in 0-1.5 s at random.
// The in-flight scenarios hold L requests in flight (L clients, each
// re-issuing its request when the answer comes, round robin over the ready
// pods as a Service would); cloudwatch-direct's sends L requests a second
// whatever the answers take (k6's constant-arrival-rate).
const httpTarget = 2 // in flight (or req/s) a pod: the triggers' target per unit

// httpScenario is one webapi overlay under a sequence of loads.
type httpScenario struct {
	overlay string
	loads   []int // one after the other; then none
	rate    bool  // loads are requests per second, not requests in flight
	windows bool  // with components/local-e2e-windows (minutes, not the shipped 300 s)
	hold    time.Duration
	// back: after the last load, none, and back to the minimum (amp with
	// the shipped window, gateway with the local one). Each wait for the
	// scale-down window adds 6 to 8 minutes to make e2e's longest path.
	back bool
}

// TestAMPScalesToWhatTheLoadNeedsAndBack: the amp overlay, Prometheus
// standing in for Amazon Managed Prometheus. webapi's pods export over OTLP
// (every 15 s, as shipped) to the collector Deployment running the shipped
// amp.yaml, which remote-writes each pod's busy seconds to Prometheus;
// KEDA's prometheus scaler runs the trigger's own query, the rate of their
// sum over 1 min: the mean number in flight. 16 in flight, then 7, then
// none, with the shipped 300 s scale-down window.
func TestAMPScalesToWhatTheLoadNeedsAndBack(t *testing.T) {
	runHTTP(t, httpScenario{overlay: "amp", loads: []int{16, 7}, hold: 2 * time.Minute, back: true})
}

// TestCloudWatchDirectScalesToWhatTheLoadNeeds: the cloudwatch-direct
// overlay, the CloudWatch stand-in (pkg/cwstandin) in place of CloudWatch.
// Each webapi pod puts its RequestPerSecond (over its 60 s export window)
// with PutMetricData; KEDA's aws-cloudwatch scaler runs the trigger's
// SELECT SUM(RequestPerSecond) ... over the newest whole minute that is a
// minute old. 16 requests a second (8 pods share it evenly), with the
// shipped 300 s scale-down window.
func TestCloudWatchDirectScalesToWhatTheLoadNeeds(t *testing.T) {
	runHTTP(t, httpScenario{overlay: "cloudwatch-direct", loads: []int{16}, rate: true, hold: 2 * time.Minute})
}

// TestCloudWatchDirectScalesToALoadThePodsDoNotDivide: as above, 7
// requests a second (4 pods share it unevenly), on a cluster of its own: a
// step down from 16 would wait out the shipped 300 s window and the
// CloudWatch signal's delay (8 minutes) on make e2e's longest path.
func TestCloudWatchDirectScalesToALoadThePodsDoNotDivide(t *testing.T) {
	runHTTP(t, httpScenario{overlay: "cloudwatch-direct", loads: []int{7}, rate: true, hold: 2 * time.Minute})
}

// TestSidecarScalesToWhatTheLoadNeeds: the sidecar overlay, every webapi
// pod with a collector sidecar (the shipped cloudwatch.yaml) that writes
// its busy seconds as CloudWatch embedded metric format to CloudWatch Logs
// — here the stand-in, which extracts the metrics as CloudWatch does;
// KEDA's aws-cloudwatch scaler runs the trigger's SELECT
// SUM("http.server.request.duration_sum") ... over the newest whole minute
// that is a minute old. 16 in flight, with the shipped 300 s scale-down
// window; gateway, the same trigger, takes the load the pods do not divide.
func TestSidecarScalesToWhatTheLoadNeeds(t *testing.T) {
	runHTTP(t, httpScenario{overlay: "sidecar", loads: []int{16}, hold: 2 * time.Minute})
}

// TestGatewayScalesToWhatTheLoadNeedsAndBack: the gateway overlay, the
// same trigger as sidecar's, with one collector Deployment (the shipped
// cloudwatch.yaml) that every webapi pod exports to through its Service (a
// forwarder here). 7 in flight (4 pods share it unevenly), with the local
// windows (180 s).
func TestGatewayScalesToWhatTheLoadNeedsAndBack(t *testing.T) {
	runHTTP(t, httpScenario{overlay: "gateway", loads: []int{7}, windows: true, hold: 2 * time.Minute, back: true})
}

// unitOf is the unit of a load: requests in flight, or a second (rate).
func unitOf(rate bool) string {
	if rate {
		return "req/s"
	}
	return "in flight"
}

// signalDelay is how long after a change of load or pods the overlay's
// signal may still read the old state: amp, its 1 min rate window and a
// 15 s export; the CloudWatch triggers, up to 4 min 15 s after a scale-out
// with the HPA's sync (deploy/README.md, "The trigger arithmetic").
func signalDelay(overlay string) time.Duration {
	if overlay == "amp" {
		return 75 * time.Second
	}
	return 4*time.Minute + 30*time.Second
}

// floorOf is the chain of delays the settings put between a load and the
// first reading that can show it, at worst: the export interval, for the
// CloudWatch triggers the period and the end offset, and the HPA's 15 s
// sync (with a minimum of 1 the HPA reads the metric itself; KEDA's
// pollingInterval only decides activation).
func floorOf(overlay string) time.Duration {
	if overlay == "amp" {
		return 15*time.Second + 15*time.Second
	}
	return 60*time.Second + 60*time.Second + 60*time.Second + 15*time.Second
}

// runHTTP applies a webapi overlay and, for each load in turn, checks that
// the real KEDA + HPA bring the replicas to ⌈L/2⌉ ± 1 (up at once, down
// only after the scale-down window, never below ⌈L/2⌉ - 1 on the way),
// hold them there through the signal's dip after a scale-out, and then that
// every reading the HPA takes for the hold is within ⌈L/2⌉ ± 1 pods and
// the replicas never leave it; after the last load, back to the minimum.
func runHTTP(t *testing.T, sc httpScenario) {
	ctx := scenario(t, 45*time.Minute)
	unit := unitOf(sc.rate)
	var comps []string
	if sc.windows {
		comps = append(comps, "local-e2e-windows")
	}
	var steps []string
	for _, l := range sc.loads {
		steps = append(steps, fmt.Sprintf("%d -> %d pods", l, int(math.Ceil(float64(l)/httpTarget))))
	}
	r := startHTTP(t, ctx, sc.overlay, "", fmt.Sprintf("%s: %s %s, then none", sc.overlay, strings.Join(steps, ", then "), unit), comps...)
	e, gen, tl := r.e, r.gen, r.tl
	target, window := e.hpaSettings(t, ctx, "keda-hpa-webapi")
	perUnit := target / httpTarget // the metric per request in flight (or per req/s): 1, or 60 busy seconds a minute
	delay := signalDelay(sc.overlay)
	t.Logf("%s: target %.0f a pod (%.0f per %s), scale-down window %s, signal delay %s", sc.overlay, target, perUnit, unit, window, delay)

	prev := int32(1)
	for i, load := range sc.loads {
		want := int32(math.Ceil(float64(load) / httpTarget))
		lo, hi := want-1, want+1
		ph := phase{load: fmt.Sprintf("%d %s", load, unit), want: want, first: -1, floor: floorOf(sc.overlay)}
		tl.Mark(fmt.Sprintf("load %d %s", load, unit))
		tl.Expect("pods", float64(lo), float64(hi), fmt.Sprintf("⌈%d/%d⌉ ± 1", load, httpTarget))
		gen.stop()
		began := time.Now()
		gen.start(load, sc.rate)
		bound := 9 * time.Minute
		if want < prev {
			bound = window + delay + 3*time.Minute
		}
		// Down: never below the new count on the way.
		e.waitReplicasWithin(t, ctx, "webapi", bound, lo, hi, func(r int32) bool { return want < prev && r < lo })
		ph.toTarget = time.Since(began)
		t.Logf("%s: %d-%d replicas %s after the load changed (the settings' chain %s)",
			ph.load, lo, hi, ph.toTarget.Round(time.Second), ph.floor)
		if want > prev {
			// The pods just added are missing from the signal until their
			// first export is read: the sum reads low for a while, and the
			// scale-down window must outlast it.
			e.holdReplicas(t, ctx, "webapi", delay, lo, hi)
		}
		ph.readMin, ph.readMax, ph.replMin, ph.replMax = e.holdReads(t, ctx, "keda-hpa-webapi", sc.hold, lo, hi, target, perUnit)
		t.Logf("%s: for %s every HPA reading %.2f..%.2f %s, replicas %d..%d (want %d ± 1)",
			ph.load, sc.hold, ph.readMin, ph.readMax, unit, ph.replMin, ph.replMax, want)
		if i == 0 {
			// Read once the hold is over: the sampler, which records the
			// first scale-out, may see a one-step jump (1 to 4) after
			// waitReplicasWithin did.
			ph.first = e.firstScaleOut()
		}
		e.addPhase(ph)
		prev = want
	}
	if !sc.back {
		gen.stop()
		tl.Mark("load stopped")
		return
	}
	tl.Mark("load stopped")
	tl.Expect("pods", 1, 1, "back to the minimum, 1, once the scale-down window passes")
	gen.stop()
	stopped := time.Now()
	e.waitReplicasWithin(t, ctx, "webapi", window+delay+3*time.Minute, 1, 1, nil)
	e.addPhase(phase{load: "none", want: 1, first: -1, toTarget: time.Since(stopped), readMin: math.NaN(), readMax: math.NaN()})
	tl.Mark("back to 1")
	t.Logf("back to 1 replica %s after the load stopped (window %s); whole run %s",
		time.Since(stopped).Round(time.Second), window, time.Since(e.started).Round(time.Second))
}

// TestAMPSeedsAverageUnderScales is the counterexample, on a cluster of
// its own (no series left over from another run): the amp overlay with the
// seeds' shape — the average over pods of the in-flight level,
// avg(http_server_active_requests), with the same AverageValue 2 — under
// 16 in flight, with the local windows. The HPA reads L/N per pod and asks
// for ⌈L/(2N)⌉: the first pod's reading (L/1) scales out early, then more
// pods make the metric smaller, and the replicas settle far below the
// ⌈L/2⌉ the load needs (near √(L/2) once the pods' series are all in), with
// nothing in the cluster reporting a problem. It must show the early peak
// and a finite reading the HPA took (a dead Prometheus or a typo in the
// query would otherwise leave 1 replica and pass).
func TestAMPSeedsAverageUnderScales(t *testing.T) {
	ctx := scenario(t, 15*time.Minute)
	const load = 16
	want := int32(math.Ceil(load / float64(httpTarget)))
	r := startHTTP(t, ctx, "amp", `avg(http_server_active_requests{job="webapi"})`,
		fmt.Sprintf("amp with the seeds' avg(...): %d requests in flight need %d pods", load, want), "local-e2e-windows")
	e, gen, tl := r.e, r.gen, r.tl

	tl.Mark(fmt.Sprintf("load %d", load))
	gen.start(load, false)
	began := time.Now()
	// Its windows: the first exports (every 15 s in the amp overlay), the
	// scale-up steps, then the 75 s scale-down stabilization after the
	// readings fall once every pod has exported (200 s cover them).
	var early int32
	reads := 0
	_ = localproc.PollContext(ctx, time.Second, 200*time.Second, func() (bool, error) {
		if n, ok := e.replicas(ctx, "webapi"); ok {
			early = max(early, n)
		}
		if v := e.hpaReads(ctx, "keda-hpa-webapi"); !math.IsNaN(v) && v > 0 {
			reads++
		}
		return false, nil
	})
	tl.Mark("windows passed")
	tl.Expect("pods", 1, float64(want/2), fmt.Sprintf("the counterexample: at most %d (half of the %d the load needs)", want/2, want))
	var peak int32
	_ = localproc.PollContext(ctx, time.Second, 90*time.Second, func() (bool, error) {
		if n, ok := e.replicas(ctx, "webapi"); ok {
			peak = max(peak, n)
		}
		return false, nil
	})
	gen.stop()
	tl.Mark("load stopped")
	// L/N per pod → ⌈L/(2N)⌉: √(L/2) if only live pods' series counted; the
	// series of pods just removed stay in the average for Prometheus'
	// 5-minute lookback, which pulls it lower still.
	t.Logf("seeds' avg(...) with AverageValue: early peak %d replicas (%d seconds with a positive HPA reading), then at most %d for a load needing %d (√(L/2) = %.1f)",
		early, reads, peak, want, math.Sqrt(load/2.0))
	e.addPhase(phase{load: fmt.Sprintf("%d in flight (seeds' avg)", load), want: want, first: e.firstScaleOut(), toTarget: -1,
		floor: floorOf("amp"), readMin: math.NaN(), readMax: math.NaN(), replMin: 1, replMax: peak})
	if reads == 0 {
		t.Errorf("the HPA never read a positive value from the seeds' query in %s: the signal is broken, not the arithmetic", time.Since(began).Round(time.Second))
	}
	if early < 2 {
		t.Errorf("no early scale-out (peak %d): the first pod's reading L/1 = %d should have asked for more than 1", early, load)
	}
	if peak > want/2 {
		t.Errorf("seeds' avg(...) held up to %d replicas for a load needing %d: the counterexample no longer under-scales", peak, want)
	}
	t.Logf("whole run %s", time.Since(e.started).Round(time.Second))
}

// httpRun is a webapi overlay applied on a fresh local control plane with
// its signal path, a load holder and the timeline being sampled.
type httpRun struct {
	e   *env
	gen *holder
	tl  *timeline.Timeline
	// signal stands between KEDA and the trigger's source (Prometheus'
	// query API, the CloudWatch stand-in); it passes every request until a
	// fault scenario sets a fault.
	signal *faultproxy.Proxy
}

// startHTTP applies a webapi overlay with the local end of its signal path
// — amp: Prometheus and a forwarder standing in for the collector's
// Service; cloudwatch-direct, sidecar, gateway: the CloudWatch stand-in —
// (for amp, with query in place of the shipped trigger's, if given: the
// counterexample). It samples in flight, replicas, ready pods and the value
// the HPA last read from KEDA's metrics adapter, and returns once a webapi pod is
// ready and the HPA reads its metric. components are added after
// local-e2e (local-e2e-windows). The timeline is saved when the test ends.
func startHTTP(t *testing.T, ctx context.Context, overlay, query, title string, components ...string) *httpRun {
	t.Helper()
	values := map[string]string{}
	var collectorSelector string
	// signal is put between KEDA and the source it reads: Prometheus' query
	// API (the collector remote-writes around it), the CloudWatch stand-in
	// (the pods' puts go through it too; a fault names the operation it
	// fails).
	var signal *faultproxy.Proxy
	proxy := func(target string) string {
		var err error
		if signal, err = faultproxy.Start(target); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(signal.Close)
		return signal.URL
	}
	switch overlay {
	case "amp":
		prom, _ := proctest.StartPrometheus(t, marker())
		values["PROMETHEUS_URL"] = proxy(prom)
		values["PROMETHEUS_REMOTE_WRITE_URL"] = prom + "/api/v1/write"
		collectorSelector = "app.kubernetes.io/name=otel-collector"
	case "cloudwatch-direct", "sidecar", "gateway":
		// Started before the cluster so it outlives the pods' last flush;
		// a request it cannot parse fails the test.
		values["CLOUDWATCH_ENDPOINT"] = proxy(cwtest.New(t).URL)
		if overlay == "gateway" {
			collectorSelector = "app.kubernetes.io/name=otel-collector"
		}
	default:
		t.Fatalf("no signal path for overlay %s", overlay)
	}
	if query != "" && overlay != "amp" {
		t.Fatalf("a query replaces only the amp trigger's")
	}
	e := start(t, ctx)
	if collectorSelector != "" {
		values["OTEL_COLLECTOR_URL"] = e.forward(t, collectorSelector, 4318)
	}
	e.apply(t, ctx, overlay, e.localValues(t, values), components...)
	if query != "" {
		patch := fmt.Sprintf(`[{"op":"replace","path":"/spec/triggers/0/metadata/query","value":%q}]`, query)
		if _, err := e.kedaClient(t).Resource(scaledObjects).Namespace(namespace).Patch(ctx, "webapi", types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r := &httpRun{e: e, gen: &holder{e: e, selector: "app.kubernetes.io/name=webapi"}, signal: signal,
		tl: timeline.New(title, timeline.Series{Name: "in flight", Panel: "load"}, timeline.Series{Name: "replicas", Panel: "pods"},
			timeline.Series{Name: "ready", Panel: "pods"}, timeline.Series{Name: "HPA reads", Panel: "HPA reads (KEDA's value for the trigger)"})}
	// Reads outlive the scenario's context: the last sample is taken in
	// the cleanup, after the scenario returned and cancelled it.
	readCtx := context.WithoutCancel(ctx)
	stopSampling := e.sample(ctx, r.tl, func() []float64 {
		ctx, cancel := context.WithTimeout(readCtx, 10*time.Second)
		defer cancel()
		d, err := e.client.AppsV1().Deployments(namespace).Get(ctx, "webapi", metav1.GetOptions{})
		if err != nil || d.Spec.Replicas == nil {
			return nil
		}
		if *d.Spec.Replicas > 1 {
			e.scaledOut(r.gen.since())
		}
		return []float64{float64(r.gen.inFlight.Load()), float64(*d.Spec.Replicas), float64(d.Status.ReadyReplicas), e.hpaReads(ctx, "keda-hpa-webapi")}
	})
	t.Cleanup(func() {
		r.gen.stop()
		stopSampling()
		saveTimeline(t, r.tl, e.out)
	})
	e.waitEndpoints(t, ctx, r.gen.selector, 1, 2*time.Minute)
	if collectorSelector != "" {
		e.waitEndpoints(t, ctx, collectorSelector, 1, 2*time.Minute)
	}
	e.waitHPA(t, ctx, "keda-hpa-webapi", 3*time.Minute)
	return r
}

// holder keeps n requests in flight against the ready pods of selector,
// each client re-issuing its request when the answer comes, or (rate) sends
// n requests a second whatever the answers take; each request goes to the
// next pod ready at that moment (a Service's job).
type holder struct {
	e        *env
	selector string
	inFlight atomic.Int64
	started  atomic.Pointer[time.Time]
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// since is the time the load began (zero before).
func (h *holder) since() time.Time {
	if p := h.started.Load(); p != nil {
		return *p
	}
	return time.Time{}
}

func (h *holder) start(n int, rate bool) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	if h.started.Load() == nil {
		now := time.Now()
		h.started.Store(&now)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4 * n}, Timeout: 30 * time.Second}
	var next atomic.Int64
	// send sends one request to the next ready pod; false: none is ready
	// (a Service would refuse too).
	send := func() bool {
		urls, _ := h.e.runner.Endpoints(namespace, h.selector)
		if len(urls) == 0 {
			return false
		}
		url := urls[int(next.Add(1))%len(urls)] + "/weatherforecast"
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		h.inFlight.Add(1)
		resp, err := client.Do(req)
		h.inFlight.Add(-1)
		if err == nil {
			resp.Body.Close()
		}
		return true
	}
	if rate {
		h.wg.Go(func() {
			defer client.CloseIdleConnections()
			tick := time.NewTicker(time.Second / time.Duration(n))
			defer tick.Stop()
			var reqs sync.WaitGroup
			defer reqs.Wait()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					reqs.Go(func() { send() })
				}
			}
		})
		return
	}
	for range n {
		h.wg.Go(func() {
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				if !send() {
					time.Sleep(100 * time.Millisecond) // no ready pod yet
				}
			}
		})
	}
}

func (h *holder) stop() {
	if h.cancel != nil {
		h.cancel()
		h.wg.Wait()
	}
}

// scaledObjects is KEDA's ScaledObject resource.
var scaledObjects = schema.GroupVersionResource{Group: "keda.sh", Version: "v1alpha1", Resource: "scaledobjects"}

// kedaClient is a dynamic client for KEDA's resources.
func (e *env) kedaClient(t *testing.T) dynamic.Interface {
	t.Helper()
	c, err := dynamic.NewForConfig(e.cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hpaReads is the metric value the HPA named hpaName last read for its
// first (external) metric — what KEDA's metrics adapter served it — as the
// total the trigger computed: for an AverageValue target the HPA records
// the value per current pod, multiplied back here (NaN if none yet). Read
// from the HPA's status, not by asking the metrics API: each such request
// would run the scaler once more and count toward the ScaledObject's
// fallback on errors, changing what is measured.
func (e *env) hpaReads(ctx context.Context, hpaName string) float64 {
	hpa, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, hpaName, metav1.GetOptions{})
	if err != nil || len(hpa.Status.CurrentMetrics) == 0 || hpa.Status.CurrentMetrics[0].External == nil {
		return math.NaN()
	}
	cur := hpa.Status.CurrentMetrics[0].External.Current
	switch {
	case cur.AverageValue != nil:
		return math.Round(cur.AverageValue.AsApproximateFloat64()*float64(hpa.Status.CurrentReplicas)*1000) / 1000
	case cur.Value != nil:
		return cur.Value.AsApproximateFloat64()
	}
	return math.NaN()
}

// holdReplicas checks for d that a Deployment's replicas stay within
// [lo, hi].
func (e *env) holdReplicas(t *testing.T, ctx context.Context, name string, d time.Duration, lo, hi int32) {
	t.Helper()
	var bad []int32
	_ = localproc.PollContext(ctx, time.Second, d, func() (bool, error) {
		dep, err := e.client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil && dep.Spec.Replicas != nil && (*dep.Spec.Replicas < lo || *dep.Spec.Replicas > hi) {
			bad = append(bad, *dep.Spec.Replicas)
		}
		return false, nil
	})
	if len(bad) > 0 {
		t.Errorf("%s left [%d, %d] while the load lasted: %v", name, lo, hi, bad)
	}
}

// replicas is a Deployment's spec.replicas (false: no answer).
func (e *env) replicas(ctx context.Context, name string) (int32, bool) {
	d, err := e.client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil || d.Spec.Replicas == nil {
		return 0, false
	}
	return *d.Spec.Replicas, true
}

// hpaSettings are the target a pod of the HPA's first (external) metric,
// an AverageValue, and its scale-down stabilization window, as KEDA wrote
// them from the ScaledObject.
func (e *env) hpaSettings(t *testing.T, ctx context.Context, name string) (float64, time.Duration) {
	t.Helper()
	hpa, err := e.client.AutoscalingV2().HorizontalPodAutoscalers(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hpa.Spec.Metrics) == 0 || hpa.Spec.Metrics[0].External == nil || hpa.Spec.Metrics[0].External.Target.AverageValue == nil {
		t.Fatalf("HPA %s: first metric %+v, want an external AverageValue", name, hpa.Spec.Metrics)
	}
	if hpa.Spec.Behavior == nil || hpa.Spec.Behavior.ScaleDown == nil || hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds == nil {
		t.Fatalf("HPA %s has no scale-down window", name)
	}
	return hpa.Spec.Metrics[0].External.Target.AverageValue.AsApproximateFloat64(),
		time.Duration(*hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds) * time.Second
}

// waitReplicasWithin waits until a Deployment's replicas are within
// [lo, hi], failing at once if bad (when given) holds for a count on the way.
func (e *env) waitReplicasWithin(t *testing.T, ctx context.Context, name string, timeout time.Duration, lo, hi int32, bad func(int32) bool) {
	t.Helper()
	var last int32 = -1
	err := localproc.PollContext(ctx, 500*time.Millisecond, timeout, func() (bool, error) {
		n, ok := e.replicas(ctx, name)
		if !ok {
			return false, nil
		}
		last = n
		if bad != nil && bad(n) {
			return false, fmt.Errorf("%d replicas on the way to %d..%d", n, lo, hi)
		}
		return n >= lo && n <= hi, nil
	})
	if err != nil {
		t.Fatalf("Deployment %s to %d..%d replicas: %v (last %d)", name, lo, hi, err, last)
	}
}

// holdReads checks for d, every second, that the Deployment webapi's
// replicas and every reading of the HPA named hpaName (its metric total,
// target a pod) ask for lo..hi pods, and returns the readings' range in the
// load's unit (total / perUnit) and the replicas' range.
func (e *env) holdReads(t *testing.T, ctx context.Context, hpaName string, d time.Duration, lo, hi int32, target, perUnit float64) (float64, float64, int32, int32) {
	t.Helper()
	readMin, readMax := math.Inf(1), math.Inf(-1)
	replMin, replMax := int32(math.MaxInt32), int32(0)
	var bad []string
	began := time.Now()
	stalled, _ := cpuStalled()
	_ = localproc.PollContext(ctx, time.Second, d, func() (bool, error) {
		if n, ok := e.replicas(ctx, "webapi"); ok {
			replMin, replMax = min(replMin, n), max(replMax, n)
			if n < lo || n > hi {
				bad = append(bad, fmt.Sprintf("%d replicas", n))
			}
		}
		v := e.hpaReads(ctx, hpaName)
		if math.IsNaN(v) {
			bad = append(bad, "no reading")
			return false, nil
		}
		readMin, readMax = min(readMin, v/perUnit), max(readMax, v/perUnit)
		if pods := int32(math.Ceil(v / target)); pods < lo || pods > hi {
			bad = append(bad, fmt.Sprintf("reading %.2f asks for %d pods", v/perUnit, pods))
		}
		return false, nil
	})
	// How starved the machine was: a failure on a machine that ran
	// nothing for seconds at a time says so.
	starved := "the machine's CPU pressure over the hold: n/a (no /proc/pressure/cpu)"
	if now, ok := cpuStalled(); ok {
		starved = fmt.Sprintf("the machine's CPU pressure (PSI some) over the hold: %.0f %%",
			100*float64(now-stalled)/float64(time.Since(began)))
	}
	t.Log(starved)
	if len(bad) > 0 {
		t.Errorf("while the load held, want %d..%d pods from every reading and replica count: %s (%s)", lo, hi, strings.Join(slices.Compact(bad), "; "), starved)
	}
	return readMin, readMax, replMin, replMax
}

// cpuStalled is how long, so far, some runnable task on this machine waited
// for a CPU (Linux PSI: /proc/pressure/cpu, "some" total); false without PSI.
func cpuStalled() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	_, total, _ := strings.Cut(line, "total=")
	us, err := strconv.ParseInt(strings.TrimSpace(total), 10, 64)
	return time.Duration(us) * time.Microsecond, err == nil
}
