//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
	"github.com/keda-eks-samples/workloads/tools/kedasim/internal/proctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/localcluster"
	"github.com/keda-eks-samples/workloads/tools/kedasim/timeline"
)

// Every webapi overlay's trigger has the same arithmetic: AverageValue 2,
// so a load of L needs ⌈L/2⌉ pods, within 1..10. The tests hold L
// requests in flight (L goroutines, each re-issuing its request when the
// answer comes, spread round robin over the ready pods as a Service
// would). components/local-e2e makes every answer take 1 s, so L in flight
// are also L requests per second: the same ⌈L/2⌉ for the in-flight
// triggers (amp, sidecar) and for cloudwatch-direct's request rate.
const (
	// cloudWatchHold is how long the CloudWatch overlays must hold: a
	// pod's datapoint is read 1-2 minutes after its export (the newest
	// whole minute that is a minute old), so the first reading with every
	// new pod's share in it comes about 3 minutes after the scale-out.
	cloudWatchHold = 4 * time.Minute

	httpLoad   = 16 // requests in flight
	httpTarget = 2  // the triggers' targetMetricValue / threshold
)

// TestAMPScalesToWhatTheLoadNeedsAndBack: the amp overlay, Prometheus
// standing in for Amazon Managed Prometheus, webapi with its shipped
// answer times (0-1.5 s at random). webapi's pods export over OTLP (every
// 15 s, as shipped) to the collector Deployment running the shipped
// amp.yaml, which remote-writes each pod's busy seconds to Prometheus;
// KEDA's prometheus scaler runs the trigger's own query, the rate of their
// sum over 1 min: the mean number in flight.
func TestAMPScalesToWhatTheLoadNeedsAndBack(t *testing.T) {
	t.Parallel()
	// The 1 min rate window holds only loaded time a minute after the load
	// and after each scale-out; 90 s of holding cover it.
	scalesToTheLoadAndBack(t, "amp", 5*time.Minute, 90*time.Second)
}

// TestCloudWatchDirectScalesToWhatTheLoadNeedsAndBack: the
// cloudwatch-direct overlay, the CloudWatch stand-in (pkg/testutil/cwstandin)
// in place of CloudWatch. Each webapi pod puts its RequestPerSecond (over
// its 60 s export window) with PutMetricData; KEDA's aws-cloudwatch scaler
// runs the trigger's SELECT SUM(RequestPerSecond) ... over the newest whole
// minute that is a minute old. Its windows: a pod's rate is read 1-2
// minutes after the second it describes.
func TestCloudWatchDirectScalesToWhatTheLoadNeedsAndBack(t *testing.T) {
	t.Parallel()
	scalesToTheLoadAndBack(t, "cloudwatch-direct", 9*time.Minute, cloudWatchHold)
}

// TestSidecarScalesToWhatTheLoadNeedsAndBack: the sidecar overlay, every
// webapi pod with a collector sidecar (the shipped cloudwatch.yaml) that
// writes its in-flight level as CloudWatch embedded metric format to
// CloudWatch Logs — here the stand-in, which extracts the metrics as
// CloudWatch does; KEDA's aws-cloudwatch scaler runs the trigger's SELECT
// SUM("http.server.active_requests") ... over the newest whole minute that
// is a minute old.
func TestSidecarScalesToWhatTheLoadNeedsAndBack(t *testing.T) {
	t.Parallel()
	scalesToTheLoadAndBack(t, "sidecar", 9*time.Minute, cloudWatchHold)
}

// TestGatewayScalesToWhatTheLoadNeedsAndBack: the gateway overlay, the
// same trigger as sidecar's, with one collector Deployment (the shipped
// cloudwatch.yaml) that every webapi pod exports to through its Service (a
// forwarder here).
func TestGatewayScalesToWhatTheLoadNeedsAndBack(t *testing.T) {
	t.Parallel()
	scalesToTheLoadAndBack(t, "gateway", 9*time.Minute, cloudWatchHold)
}

// scalesToTheLoadAndBack applies a webapi overlay, holds httpLoad requests
// in flight and checks that the real KEDA + HPA bring the replicas to
// ⌈L/2⌉ (±1), hold them there while the load lasts, and return to the
// minimum after it. window bounds each wait: the trigger's own delay.
func scalesToTheLoadAndBack(t *testing.T, overlay string, window, hold time.Duration) {
	want := int32(math.Ceil(httpLoad / float64(httpTarget))) // 8, within 1..10
	ctx, cancel := context.WithTimeout(context.Background(), 4*window)
	defer cancel()
	r := startHTTP(t, ctx, overlay, "",
		fmt.Sprintf("%s: %d requests in flight, AverageValue %d -> %d pods", overlay, httpLoad, httpTarget, want))
	e, gen, tl := r.e, r.gen, r.tl

	tl.Mark(fmt.Sprintf("load %d", httpLoad))
	tl.Expect("pods", float64(want-1), float64(want+1), fmt.Sprintf("⌈%d/%d⌉ ± 1", httpLoad, httpTarget))
	loadStart := time.Now()
	gen.start(httpLoad)
	e.waitReplicas(t, ctx, "webapi", window, func(r int32) bool { return r >= want-1 })
	t.Logf("first scale-out %s after the load began; %d+ replicas after %s",
		e.firstScaleOut().Round(time.Second), want-1, time.Since(loadStart).Round(time.Second))
	// Held within ±1 while the load lasts, until readings taken after the
	// scale-out have reached the HPA. The pods the HPA has just added are
	// missing from the signal until their first export is read (the sum
	// reads low for a while): the scale-down stabilization window
	// (components/local-e2e) outlasts that, as the shipped 300 s does.
	e.holdReplicas(t, ctx, "webapi", hold, want-1, want+1)
	tl.Mark("load stopped")
	tl.Expect("pods", 1, 1, "back to the minimum, 1, once the scale-down window passes")
	gen.stop()
	stopped := time.Now()
	e.waitReplicas(t, ctx, "webapi", window, func(r int32) bool { return r == 1 })
	tl.Mark("back to 1")
	t.Logf("back to 1 replica %s after the load stopped; whole run %s",
		time.Since(stopped).Round(time.Second), time.Since(e.started).Round(time.Second))
}

// TestAMPSeedsAverageUnderScales is the counterexample, on a cluster of
// its own (no series left over from another run): the amp overlay with the
// seeds' shape — the average over pods, avg(...), with the same
// AverageValue 2 — under the same load. The HPA reads L/N per pod and asks
// for ⌈L/(2N)⌉: more pods make the metric smaller, and the replicas settle
// far below the ⌈L/2⌉ the load needs (near √(L/2) once the pods' series
// are all in), with nothing in the cluster reporting a problem.
func TestAMPSeedsAverageUnderScales(t *testing.T) {
	t.Parallel()
	const load = httpLoad
	want := int32(math.Ceil(load / float64(httpTarget)))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	r := startHTTP(t, ctx, "amp", `avg(http_server_active_requests{job="webapi"})`,
		fmt.Sprintf("amp with the seeds' avg(...): %d requests in flight need %d pods", load, want))
	e, gen, tl := r.e, r.gen, r.tl

	tl.Mark(fmt.Sprintf("load %d", load))
	gen.start(load)
	// Its windows: the first exports (every 15 s in the amp overlay; webapi
	// answers in 0-1.5 s as shipped), the scale-up steps, then the 75 s
	// scale-down stabilization after the readings fall once every pod has
	// exported (200 s covers them).
	_ = localcluster.Poll(ctx, time.Second, 200*time.Second, func() (bool, error) { return false, nil })
	tl.Mark("windows passed")
	tl.Expect("pods", 1, float64(want/2), fmt.Sprintf("the counterexample: at most %d (half of the %d the load needs)", want/2, want))
	var peak int32
	_ = localcluster.Poll(ctx, time.Second, 90*time.Second, func() (bool, error) {
		d, err := e.client.AppsV1().Deployments(namespace).Get(ctx, "webapi", metav1.GetOptions{})
		if err == nil && d.Spec.Replicas != nil {
			peak = max(peak, *d.Spec.Replicas)
		}
		return false, nil
	})
	gen.stop()
	tl.Mark("load stopped")
	// L/N per pod → ⌈L/(2N)⌉: √(L/2) if only live pods' series counted; the
	// series of pods just removed stay in the average for Prometheus'
	// 5-minute lookback, which pulls it lower still.
	t.Logf("seeds' avg(...) with AverageValue, after its windows: at most %d replica(s) for a load needing %d (√(L/2) = %.1f)",
		peak, want, math.Sqrt(load/2.0))
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
}

// startHTTP applies a webapi overlay with the local end of its signal path
// — amp: Prometheus and a forwarder standing in for the collector's
// Service; cloudwatch-direct, sidecar, gateway: the CloudWatch stand-in —
// (for amp, with query in place of the shipped trigger's, if given: the
// counterexample). It samples in flight, replicas, ready pods and the value
// the HPA last read from KEDA's metrics adapter, and returns once a webapi pod is
// ready and the HPA reads its metric. The timeline is saved when the test
// ends.
func startHTTP(t *testing.T, ctx context.Context, overlay, query, title string) *httpRun {
	t.Helper()
	values := map[string]string{}
	var collectorSelector string
	switch overlay {
	case "amp":
		prom, _ := proctest.StartPrometheus(t, marker())
		values["PROMETHEUS_URL"] = prom
		values["PROMETHEUS_REMOTE_WRITE_URL"] = prom + "/api/v1/write"
		collectorSelector = "app.kubernetes.io/name=otel-collector"
	case "cloudwatch-direct", "sidecar", "gateway":
		// Started before the cluster so it outlives the pods' last flush;
		// a request it cannot parse fails the test.
		values["CLOUDWATCH_ENDPOINT"] = cwstandin.New(t).URL
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
	e.apply(t, ctx, overlay, e.localValues(t, values))
	if query != "" {
		patch := fmt.Sprintf(`[{"op":"replace","path":"/spec/triggers/0/metadata/query","value":%q}]`, query)
		if _, err := e.kedaClient(t).Resource(scaledObjects).Namespace(namespace).Patch(ctx, "webapi", types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r := &httpRun{e: e, gen: &holder{e: e, selector: "app.kubernetes.io/name=webapi"},
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
// each client re-issuing its request when the answer comes, spread round
// robin over the pods ready at that moment (a Service's job).
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

func (h *holder) start(n int) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	now := time.Now()
	h.started.Store(&now)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 30 * time.Second}
	var next atomic.Int64
	for range n {
		h.wg.Go(func() {
			defer client.CloseIdleConnections()
			for ctx.Err() == nil {
				urls, _ := h.e.runner.Endpoints(namespace, h.selector)
				if len(urls) == 0 {
					time.Sleep(100 * time.Millisecond) // no ready pod: a Service would refuse too
					continue
				}
				url := urls[int(next.Add(1))%len(urls)] + "/weatherforecast"
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				h.inFlight.Add(1)
				resp, err := client.Do(req)
				h.inFlight.Add(-1)
				if err == nil {
					resp.Body.Close()
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
	_ = localcluster.Poll(ctx, time.Second, d, func() (bool, error) {
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
