//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/keda-eks-samples/workloads/test/deploy/internal/localcluster"
	"github.com/keda-eks-samples/workloads/test/deploy/internal/proctest"
)

// TestAMPScalesToWhatTheLoadNeedsAndBack: the amp overlay on the local
// control plane, Prometheus standing in for Amazon Managed Prometheus.
// webapi's pods export http.server.active_requests over OTLP (every 60 s,
// as shipped) to the collector Deployment running the shipped amp.yaml,
// which remote-writes to Prometheus; KEDA's prometheus scaler runs the
// trigger's own query, sum(http_server_active_requests{job="webapi"}),
// AverageValue 2, and the real HPA controller sets the replicas.
//
// A load of L requests kept in flight (L goroutines, spread over the ready
// pods as a Service would) needs ⌈L/2⌉ pods: the replicas reach it, hold
// while the load lasts, and return to the minimum after it.
// TestAMPSeedsAverageUnderScales is the same load with the seeds' shape.
func TestAMPScalesToWhatTheLoadNeedsAndBack(t *testing.T) {
	const (
		load   = 16 // requests in flight
		target = 2  // the trigger's threshold (AverageValue)
	)
	want := int32(math.Ceil(load / float64(target))) // 8, within 1..10
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	r := startAMP(t, ctx, "", fmt.Sprintf("amp: %d requests in flight, sum(...) AverageValue %d -> %d pods", load, target, want))
	e, gen, tl := r.e, r.gen, r.tl

	// The shipped trigger: up to ⌈L/2⌉, held, and back to 1.
	tl.mark(fmt.Sprintf("load %d", load))
	loadStart := time.Now()
	gen.start(load)
	var firstScale time.Duration
	e.waitReplicas(t, ctx, "webapi", 5*time.Minute, func(r int32) bool {
		if r > 1 && firstScale == 0 {
			firstScale = time.Since(loadStart)
		}
		return r >= want-1
	})
	t.Logf("first scale-out %s after the load began; %d+ replicas after %s",
		firstScale.Round(time.Second), want-1, time.Since(loadStart).Round(time.Second))
	// Held: never below ⌈L/2⌉-1 while the load lasts. Above is allowed up
	// to the maximum: once in four runs the sum read 19 for 16 in flight
	// for about 25 s (each pod's value is its own export's snapshot, taken
	// at a different instant while the load was still moving onto the new
	// pods) and the replicas went to 10, the max. Not yet explained further.
	e.holdReplicas(t, ctx, "webapi", 90*time.Second, want-1, 10)
	tl.mark("load stopped")
	gen.stop()
	e.waitReplicas(t, ctx, "webapi", 5*time.Minute, func(r int32) bool { return r == 1 })
	tl.mark("back to 1")

	t.Logf("whole run %s", time.Since(e.started).Round(time.Second))
}

// TestAMPSeedsAverageUnderScales is the counterexample, on a cluster of
// its own (no series left over from another run): the amp overlay with the
// seeds' shape — the average over pods, avg(...), with the same
// AverageValue 2 — under the same load. The HPA reads L/N per pod and asks
// for ⌈L/(2N)⌉: more pods make the metric smaller, and the replicas settle
// far below the ⌈L/2⌉ the load needs (near √(L/2) once the pods' series
// are all in), with nothing in the cluster reporting a problem.
func TestAMPSeedsAverageUnderScales(t *testing.T) {
	const load, target = 16, 2
	want := int32(math.Ceil(load / float64(target)))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	r := startAMP(t, ctx, `avg(http_server_active_requests{job="webapi"})`,
		fmt.Sprintf("amp with the seeds' avg(...): %d requests in flight need %d pods", load, want))
	e, gen, tl := r.e, r.gen, r.tl

	tl.mark(fmt.Sprintf("load %d", load))
	gen.start(load)
	// Its windows: one export (60 s) before the first reading, the scale-up
	// steps, then the 75 s scale-down stabilization after the readings
	// fall once every pod has exported (about 200 s in all).
	_ = localcluster.Poll(ctx, time.Second, 200*time.Second, func() (bool, error) { return false, nil })
	tl.mark("windows passed")
	var peak int32
	_ = localcluster.Poll(ctx, time.Second, 90*time.Second, func() (bool, error) {
		d, err := e.client.AppsV1().Deployments(namespace).Get(ctx, "webapi", metav1.GetOptions{})
		if err == nil && d.Spec.Replicas != nil {
			peak = max(peak, *d.Spec.Replicas)
		}
		return false, nil
	})
	gen.stop()
	tl.mark("load stopped")
	// L/N per pod → ⌈L/(2N)⌉: √(L/2) if only live pods' series counted; the
	// series of pods just removed stay in the average for Prometheus'
	// 5-minute lookback, which pulls it lower still.
	t.Logf("seeds' avg(...) with AverageValue, after its windows: at most %d replicas for a load needing %d (√(L/2) = %.1f)",
		peak, want, math.Sqrt(load/2.0))
	if peak > want/2 {
		t.Errorf("seeds' avg(...) held up to %d replicas for a load needing %d: the counterexample no longer under-scales", peak, want)
	}
	t.Logf("whole run %s", time.Since(e.started).Round(time.Second))
}

// ampRun is the amp overlay applied on a fresh local control plane, with
// Prometheus, a forwarder standing in for the collector's Service, a load
// holder and the timeline being sampled.
type ampRun struct {
	e   *env
	gen *holder
	tl  *timeline
}

// startAMP applies the amp overlay (with query in place of the shipped
// trigger's, if given: the counterexample), starts sampling in flight,
// replicas and the trigger's query result, and returns once a webapi pod
// and a collector are ready and the HPA reads its metric. The timeline is
// saved when the test ends.
func startAMP(t *testing.T, ctx context.Context, query, title string) *ampRun {
	t.Helper()
	prom, _ := proctest.StartPrometheus(t)
	e := start(t, ctx)
	collector := e.forward(t, "app.kubernetes.io/name=otel-collector", 4318)
	e.apply(t, ctx, "amp", e.localValues(t, map[string]string{
		"PROMETHEUS_URL":              prom,
		"PROMETHEUS_REMOTE_WRITE_URL": prom + "/api/v1/write",
		"OTEL_COLLECTOR_URL":          collector,
	}))
	if query != "" {
		patch := fmt.Sprintf(`[{"op":"replace","path":"/spec/triggers/0/metadata/query","value":%q}]`, query)
		if _, err := e.kedaClient(t).Resource(scaledObjects).Namespace(namespace).Patch(ctx, "webapi", types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r := &ampRun{e: e, gen: &holder{e: e, selector: "app.kubernetes.io/name=webapi"},
		tl: newTimeline(title, "in flight", "replicas", "ready", "query")}
	stopSampling := e.sample(ctx, r.tl, func() []float64 {
		d, err := e.client.AppsV1().Deployments(namespace).Get(ctx, "webapi", metav1.GetOptions{})
		if err != nil || d.Spec.Replicas == nil {
			return nil
		}
		return []float64{float64(r.gen.inFlight.Load()), float64(*d.Spec.Replicas), float64(d.Status.ReadyReplicas), promQuery(ctx, prom, e.triggerQuery(ctx))}
	})
	t.Cleanup(func() {
		r.gen.stop()
		stopSampling()
		r.tl.save(t, e.out)
	})
	e.waitEndpoints(t, ctx, r.gen.selector, 1, 2*time.Minute)
	e.waitEndpoints(t, ctx, "app.kubernetes.io/name=otel-collector", 1, 2*time.Minute)
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
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

func (h *holder) start(n int) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
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

// triggerQuery is the webapi ScaledObject's prometheus query as applied
// now ("" if unreadable).
func (e *env) triggerQuery(ctx context.Context) string {
	c, err := dynamic.NewForConfig(e.cluster.Config)
	if err != nil {
		return ""
	}
	so, err := c.Resource(scaledObjects).Namespace(namespace).Get(ctx, "webapi", metav1.GetOptions{})
	if err != nil {
		return ""
	}
	triggers, _, _ := unstructured.NestedSlice(so.Object, "spec", "triggers")
	if len(triggers) == 0 {
		return ""
	}
	q, _, _ := unstructured.NestedString(triggers[0].(map[string]any), "metadata", "query")
	return q
}

// promQuery runs an instant query and returns its one value (NaN if none).
func promQuery(ctx context.Context, base, query string) float64 {
	if query == "" {
		return math.NaN()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return math.NaN()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Data.Result) != 1 {
		return math.NaN()
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return v
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
