package deploytests

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/kedascaler"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
	"github.com/keda-eks-samples/workloads/tools/kedasim/scalemath"
)

// The replica count an HPA settles on for a steady load, from each HTTP
// ScaledObject's rendered metricType, target and query: the arithmetic that
// the seeds' triggers got wrong.

// aggregation is how a trigger's query folds the pods' values together.
type aggregation string

var (
	cloudwatchAgg = regexp.MustCompile(`^SELECT (AVG|SUM|MAX|MIN|COUNT)\(`)
	promqlAgg     = regexp.MustCompile(`^(sum|avg|max|min|count)\(`)
)

func queryAggregation(tr manifests.Trigger) (aggregation, error) {
	var m []string
	switch tr.Spec.Type {
	case "aws-cloudwatch":
		m = cloudwatchAgg.FindStringSubmatch(tr.Spec.Metadata["expression"])
	case "prometheus":
		m = promqlAgg.FindStringSubmatch(tr.Spec.Metadata["query"])
	}
	if m == nil {
		return "", fmt.Errorf("%s: no aggregation the test understands in %v", tr.Owner, tr.Spec.Metadata)
	}
	return aggregation(strings.ToUpper(m[1])), nil
}

// queryValue is what the query returns when load is spread evenly over pods
// (each pod reports load/pods: requests in flight, or requests per second).
func queryValue(agg aggregation, load float64, pods int32) float64 {
	switch agg {
	case "AVG":
		return load / float64(pods)
	case "SUM":
		return load
	}
	panic("aggregation " + agg)
}

// syncPeriod is the HPA controller's default --horizontal-pod-autoscaler-sync-period.
const syncPeriod = 15 // seconds

// cloudwatchLag is how many syncs old the metric an aws-cloudwatch trigger
// hands the HPA is: KEDA reads the 60 s period that ends at
// floor(now - metricEndTimeOffset 60 s), so the newest datapoint it sees is
// 60-120 s old and the oldest 120-180 s; 8 syncs (120 s) is the middle.
const cloudwatchLag = 8

// hpaSim is the HPA controller's loop for one External metric with an
// explicit spec.behavior (k8s.io/kubernetes pkg/controller/podautoscaler/
// horizontal.go: stabilizeRecommendationWithBehaviors,
// convertDesiredReplicasWithBehaviorRate, calculateScaleUpLimitWithScalingRules,
// calculateScaleDownLimitWithBehaviors), on a clock of whole syncs. Pods are
// taken to be ready as soon as they are asked for (the real lag is longer,
// which slows a ratchet down but does not stop it).
type hpaSim struct {
	target         autoscalingv2.MetricTarget
	behavior       *autoscalingv2.HorizontalPodAutoscalerBehavior
	min, max       int32
	recs           []scaleRec // unstabilised recommendations
	ups, downs     []scaleRec // scale events (replicas added / removed)
	current, clock int32      // replicas; seconds
}

type scaleRec struct{ at, n int32 }

// since sums the events strictly after now - period (getReplicasChangePerPeriod).
func since(evs []scaleRec, now, period int32) int32 {
	var n int32
	for _, e := range evs {
		if e.at > now-period {
			n += e.n
		}
	}
	return n
}

// step runs one sync with the metric KEDA reports and returns the new count.
func (h *hpaSim) step(metric float64) int32 {
	now, cur := h.clock, h.current
	desired := scalemath.HPADesired(h.target, metric, cur)
	// Stabilisation: the lowest recommendation of the scale-up window and
	// the highest of the scale-down window bound the new one.
	up, down := desired, desired
	for _, r := range h.recs {
		if r.at > now-ptr.Deref(h.behavior.ScaleUp.StabilizationWindowSeconds, 0) {
			up = min(up, r.n)
		}
		if r.at > now-ptr.Deref(h.behavior.ScaleDown.StabilizationWindowSeconds, 300) {
			down = max(down, r.n)
		}
	}
	h.recs = append(h.recs, scaleRec{now, desired})
	rec := max(cur, up)
	rec = min(rec, down)
	// Rate limits of the behavior's policies.
	next := rec
	if rec > cur {
		limit := rateLimit(h.behavior.ScaleUp, cur, now, h.ups, h.downs, +1)
		next = min(rec, max(limit, cur), h.max)
	} else if rec < cur {
		limit := rateLimit(h.behavior.ScaleDown, cur, now, h.ups, h.downs, -1)
		next = max(rec, min(limit, cur), h.min)
	}
	next = scalemath.Clamp(next, h.min, h.max)
	if next > cur {
		h.ups = append(h.ups, scaleRec{now, next - cur})
	} else if next < cur {
		h.downs = append(h.downs, scaleRec{now, cur - next})
	}
	h.current, h.clock = next, now+syncPeriod
	return next
}

// rateLimit is the furthest one sync may go in direction dir (+1 up, -1
// down) under rules, from the count at the start of each policy's period.
func rateLimit(rules *autoscalingv2.HPAScalingRules, cur, now int32, ups, downs []scaleRec, dir int32) int32 {
	sel := ptr.Deref(rules.SelectPolicy, autoscalingv2.MaxChangePolicySelect)
	if sel == autoscalingv2.DisabledPolicySelect {
		return cur
	}
	var limit int32
	for i, p := range rules.Policies {
		start := cur - since(ups, now, p.PeriodSeconds) + since(downs, now, p.PeriodSeconds)
		var proposed int32
		switch {
		case p.Type == autoscalingv2.PodsScalingPolicy:
			proposed = start + dir*p.Value
		case dir > 0:
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		default:
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		// Max picks the policy allowing the largest change, Min the smallest.
		largest := (dir > 0) == (sel == autoscalingv2.MaxChangePolicySelect)
		switch {
		case i == 0:
			limit = proposed
		case largest:
			limit = max(limit, proposed)
		default:
			limit = min(limit, proposed)
		}
	}
	return limit
}

// settle runs the HPA from min replicas for 80 syncs (20 minutes) under a
// constant load. The metric at sync k is what the query returns for the
// replica count of sync k-lag (the count was min before the run). It
// returns the count held over the last 30 syncs (-1 if it still moves),
// the highest count reached and the sequence.
func settle(target autoscalingv2.MetricTarget, behavior *autoscalingv2.HorizontalPodAutoscalerBehavior, agg aggregation, load float64, lo, hi int32, lag int) (settled, peak int32, seq []int32) {
	h := &hpaSim{target: target, behavior: behavior, min: lo, max: hi, current: lo}
	seq = []int32{lo}
	for k := range 80 {
		seen := lo
		if k-lag >= 0 {
			seen = seq[k-lag]
		}
		seq = append(seq, h.step(queryValue(agg, load*perUnit(target), seen)))
	}
	settled, peak = seq[len(seq)-1], slices.Max(seq)
	for _, n := range seq[len(seq)-30:] {
		if n != settled {
			settled = -1
		}
	}
	return settled, peak, seq
}

// runs prints a sequence as count x syncs.
func runs(seq []int32) string {
	var b strings.Builder
	for i := 0; i < len(seq); {
		j := i
		for j < len(seq) && seq[j] == seq[i] {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		if j-i > 1 {
			fmt.Fprintf(&b, "%dx%d", seq[i], j-i)
		} else {
			fmt.Fprintf(&b, "%d", seq[i])
		}
		i = j
	}
	return b.String()
}

// webapiBehavior is the rendered ScaledObject webapi's HPA behavior.
func webapiBehavior(t *testing.T, objs []manifests.Object) *autoscalingv2.HorizontalPodAutoscalerBehavior {
	t.Helper()
	for _, o := range objs {
		if o.Kind != "ScaledObject" || o.Name != "webapi" {
			continue
		}
		v, err := manifests.DecodeStrict(o)
		if err != nil {
			t.Fatal(err)
		}
		so := v.(*kedav1alpha1.ScaledObject)
		if a := so.Spec.Advanced; a != nil && a.HorizontalPodAutoscalerConfig != nil {
			if b := a.HorizontalPodAutoscalerConfig.Behavior; b != nil && b.ScaleUp != nil && b.ScaleDown != nil {
				return b
			}
		}
		t.Fatal("ScaledObject/webapi states no scaleUp and scaleDown behavior")
	}
	t.Fatal("no ScaledObject/webapi")
	return nil
}

// httpScaledObjects are the overlays whose ScaledObject scales webapi on an
// HTTP signal, and the load each signal measures.
var httpScaledObjects = []string{"sidecar", "gateway", "cloudwatch-direct", "amp"}

// perPod is the seeds' target: 2 in flight (or 2 per second) per pod.
const perPod = 2

// perUnit is what a trigger's metric counts for one request in flight (or
// one a second): its target a pod over perPod — 1, or 60 for the busy
// seconds a minute the CloudWatch in-flight triggers read.
func perUnit(target autoscalingv2.MetricTarget) float64 {
	q := target.AverageValue
	if q == nil {
		q = target.Value
	}
	return q.AsApproximateFloat64() / perPod
}

// TestHTTPTriggersSettleOnWhatTheLoadNeeds runs each HTTP overlay's
// rendered trigger (target built by KEDA's own scaler) and behavior through
// the HPA loop for loads 0..50, with a fresh metric and with CloudWatch's
// 2-minute-old one: it must settle on ceil(load / 2) and never go above it.
func TestHTTPTriggersSettleOnWhatTheLoadNeeds(t *testing.T) {
	root := svctest.RepoRoot(t)
	for _, overlay := range httpScaledObjects {
		t.Run(overlay, func(t *testing.T) {
			objs := renderOverlay(t, root, overlay)
			trs := triggers(t, objs)
			if len(trs) != 1 {
				t.Fatalf("%d triggers, want 1", len(trs))
			}
			tr := trs[0]
			behavior := webapiBehavior(t, objs)
			s, err := kedascaler.BuildScaler(t.Context(), tr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			target := externalTarget(t, s) // as KEDA hands it to the HPA
			agg, err := queryAggregation(tr)
			if err != nil {
				t.Fatal(err)
			}
			for _, lag := range []int{0, cloudwatchLag} {
				for load := range 51 {
					want := scalemath.Clamp(int32(math.Ceil(float64(load)/perPod)), tr.Min, tr.Max)
					got, peak, seq := settle(target, behavior, agg, float64(load), tr.Min, tr.Max, lag)
					if load%10 == 6 || load == 50 {
						t.Logf("lag %3d s, load %2d: %s %s target %s: %s (want %d)", lag*syncPeriod, load, agg, target.Type, scalemath.TargetString(target), runs(seq), want)
					}
					if got != want || peak > want {
						t.Errorf("lag %d s, load %d: settles on %d, peak %d (sequence %s); the load needs %d",
							lag*syncPeriod, load, got, peak, runs(seq), want)
					}
				}
			}
		})
	}
}

// TestAvgValueRatchetsUnderLag keeps the other tempting shape — AVG of a
// per-pod value with metricType Value — as a counterexample: with a fresh
// metric it settles on ceil(load / 2), but CloudWatch's metric is minutes
// old (L / the pod count back then) and the HPA multiplies it by the current
// count at every sync, so it overshoots to a multiple of what the load needs
// and the scale-down window holds it there.
func TestAvgValueRatchetsUnderLag(t *testing.T) {
	objs := renderOverlay(t, svctest.RepoRoot(t), "gateway")
	tr := triggers(t, objs)[0]
	tr.Spec.MetricType = "Value"
	tr.Spec.Metadata["expression"] = strings.Replace(tr.Spec.Metadata["expression"], "SELECT SUM(", "SELECT AVG(", 1)
	behavior := webapiBehavior(t, objs)
	s, err := kedascaler.BuildScaler(t.Context(), tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	target := externalTarget(t, s)
	agg, err := queryAggregation(tr)
	if err != nil || agg != "AVG" || target.Type != autoscalingv2.ValueMetricType {
		t.Fatalf("counterexample is %s %s (%v), want AVG Value", agg, target.Type, err)
	}
	for _, load := range []float64{6, 12} {
		needed := scalemath.Clamp(int32(math.Ceil(load/perPod)), tr.Min, tr.Max)
		fresh, freshPeak, freshSeq := settle(target, behavior, agg, load, tr.Min, tr.Max, 0)
		t.Logf("load %v, fresh metric: AVG Value: %s (needs %d)", load, runs(freshSeq), needed)
		if fresh != needed || freshPeak != needed {
			t.Errorf("load %v, fresh metric: AVG Value settles on %d (peak %d), expected %d", load, fresh, freshPeak, needed)
		}
		_, peak, seq := settle(target, behavior, agg, load, tr.Min, tr.Max, cloudwatchLag)
		t.Logf("load %v, metric %d s old: AVG Value: %s (needs %d, peak %d)", load, cloudwatchLag*syncPeriod, runs(seq), needed, peak)
		if peak < 2*needed && peak != tr.Max {
			t.Errorf("load %v with lag: AVG Value peaks at %d, expected the ratchet to reach a multiple of %d", load, peak, needed)
		}
	}
}

// TestSeedShapeUnderScales keeps the seeds' trigger shape — AVG of a per-pod
// value with KEDA's default AverageValue — as the counterexample: once scaled
// out to what the load needs, it recommends a fraction of it.
func TestSeedShapeUnderScales(t *testing.T) {
	tr := triggers(t, renderOverlay(t, svctest.RepoRoot(t), "gateway"))[0]
	tr.Spec.MetricType = "" // the seed's: KEDA's default AverageValue
	s, err := kedascaler.BuildScaler(t.Context(), tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	target := externalTarget(t, s)
	if target.Type != autoscalingv2.AverageValueMetricType {
		t.Fatalf("KEDA's default metric type is %s", target.Type)
	}
	for _, load := range []float64{12, 20, 50} {
		needed := scalemath.Clamp(int32(math.Ceil(load/2)), tr.Min, tr.Max)
		got := scalemath.Clamp(scalemath.HPADesired(target, queryValue("AVG", load*perUnit(target), needed), needed), tr.Min, tr.Max)
		t.Logf("load %v: at the %d replicas it needs, the seed's shape recommends %d", load, needed, got)
		if got > needed/2 {
			t.Errorf("load %v at %d replicas: seed shape recommends %d, expected far fewer", load, needed, got)
		}
	}
}

// TestAMPTriggerValueThroughKedasScaler runs the amp trigger's rendered
// query through KEDA's prometheus scaler against a loopback stand-in for the
// AMP query API: KEDA sends the query as rendered, signs it with SigV4 for
// service aps (podIdentity aws, no authModes), and reports the value the
// arithmetic above uses.
func TestAMPTriggerValueThroughKedasScaler(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	tr := triggers(t, renderOverlay(t, svctest.RepoRoot(t), "amp"))[0]
	var mu sync.Mutex
	var gotQuery, gotAuth string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotQuery, gotAuth = r.URL.Query().Get("query"), r.Header.Get("Authorization")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"17"]}]}}`)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	s, err := kedascaler.BuildScaler(t.Context(), tr, map[string]string{"serverAddress": srv.URL + "/workspaces/" + "ws-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	name := s.GetMetricSpecForScaling(context.Background())[0].External.Metric.Name
	metrics, active, err := s.GetMetricsAndActivity(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gotQuery != tr.Spec.Metadata["query"] {
		t.Errorf("KEDA sent query %q, rendered %q", gotQuery, tr.Spec.Metadata["query"])
	}
	if !strings.HasPrefix(gotAuth, "AWS4-HMAC-SHA256 ") || !strings.Contains(gotAuth, "/aps/aws4_request") {
		t.Errorf("Authorization %q is not SigV4 for service aps", gotAuth)
	}
	if len(metrics) != 1 || metrics[0].Value.AsApproximateFloat64() != 17 || !active {
		t.Fatalf("KEDA reports %v active=%v, want 17 and active", metrics, active)
	}
	target := externalTarget(t, s)
	if got := scalemath.Clamp(scalemath.HPADesired(target, 17, 1), tr.Min, tr.Max); got != 9 {
		t.Errorf("17 requests in flight: HPA asks %d replicas, want ceil(17/2) = 9", got)
	}
}
