package deploy

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// The replica count an HPA settles on for a steady load, from each HTTP
// ScaledObject's rendered metricType, target and query: the arithmetic that
// the seeds' triggers got wrong.

// hpaTolerance is the HPA controller's default --horizontal-pod-autoscaler-tolerance.
const hpaTolerance = 0.1

// hpaDesired is one recommendation of the HPA controller for an External
// metric (k8s.io/kubernetes pkg/controller/podautoscaler/replica_calculator.go,
// GetExternalPerPodMetricReplicas and GetExternalMetricReplicas), written
// out because that package is not importable as a library:
//
//	AverageValue: ratio = metric / (target x current); desired = ceil(metric / target)
//	Value:        ratio = metric / target;            desired = ceil(ratio x current)
//
// and within the tolerance (|ratio - 1| <= 0.1) the current count is kept.
func hpaDesired(target autoscalingv2.MetricTarget, metric float64, current int32) int32 {
	switch target.Type {
	case autoscalingv2.AverageValueMetricType:
		t := target.AverageValue.AsApproximateFloat64()
		if math.Abs(metric/(t*float64(current))-1) <= hpaTolerance {
			return current
		}
		return int32(math.Ceil(metric / t))
	case autoscalingv2.ValueMetricType:
		ratio := metric / target.Value.AsApproximateFloat64()
		if math.Abs(ratio-1) <= hpaTolerance {
			return current
		}
		return int32(math.Ceil(ratio * float64(current)))
	}
	panic("metric target type " + string(target.Type))
}

func clamp(n, lo, hi int32) int32 { return max(lo, min(n, hi)) }

// aggregation is how a trigger's query folds the pods' values together.
type aggregation string

var (
	cloudwatchAgg = regexp.MustCompile(`^SELECT (AVG|SUM|MAX|MIN|COUNT)\(`)
	promqlAgg     = regexp.MustCompile(`^(sum|avg|max|min|count)\(`)
)

func queryAggregation(tr trigger) (aggregation, error) {
	var m []string
	switch tr.spec.Type {
	case "aws-cloudwatch":
		m = cloudwatchAgg.FindStringSubmatch(tr.spec.Metadata["expression"])
	case "prometheus":
		m = promqlAgg.FindStringSubmatch(tr.spec.Metadata["query"])
	}
	if m == nil {
		return "", fmt.Errorf("%s: no aggregation the test understands in %v", tr.owner, tr.spec.Metadata)
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

// settle runs the HPA from min replicas until the recommendation stops
// changing and returns that count, or the sequence if it never settles.
func settle(target autoscalingv2.MetricTarget, agg aggregation, load float64, min, max int32) (int32, []int32) {
	n := min
	seq := []int32{n}
	for range 50 {
		next := clamp(hpaDesired(target, queryValue(agg, load, n), n), min, max)
		if next == n {
			return n, nil
		}
		n = next
		seq = append(seq, n)
	}
	return -1, seq
}

// httpScaledObjects are the overlays whose ScaledObject scales webapi on an
// HTTP signal, and the load each signal measures.
var httpScaledObjects = []string{"sidecar", "gateway", "cloudwatch-direct", "amp"}

func TestHTTPTriggersSettleOnWhatTheLoadNeeds(t *testing.T) {
	root := repoRoot(t)
	loads := []float64{0, 1, 3, 7, 12, 20, 50}
	for _, overlay := range httpScaledObjects {
		t.Run(overlay, func(t *testing.T) {
			trs := triggers(t, renderOverlay(t, root, overlay))
			if len(trs) != 1 {
				t.Fatalf("%d triggers, want 1", len(trs))
			}
			tr := trs[0]
			s, err := buildScaler(t, tr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			target := externalTarget(t, s) // as KEDA hands it to the HPA
			agg, err := queryAggregation(tr)
			if err != nil {
				t.Fatal(err)
			}
			const perPod = 2 // the seeds' target: 2 in flight (or 2 per second) per pod
			for _, load := range loads {
				want := clamp(int32(math.Ceil(load/perPod)), tr.min, tr.max)
				got, seq := settle(target, agg, load, tr.min, tr.max)
				t.Logf("load %4.0f: %s %s target %s -> %d replicas (want %d)", load, agg, target.Type, targetString(target), got, want)
				if got != want {
					t.Errorf("load %v: settles on %d replicas (sequence %v), the load needs %d", load, got, seq, want)
				}
			}
		})
	}
}

// TestSeedShapeUnderScales keeps the seeds' trigger shape — AVG of a per-pod
// value with KEDA's default AverageValue — as the counterexample: once scaled
// out to what the load needs, it recommends a fraction of it.
func TestSeedShapeUnderScales(t *testing.T) {
	tr := triggers(t, renderOverlay(t, repoRoot(t), "gateway"))[0]
	tr.spec.MetricType = "" // the seed's: KEDA's default AverageValue
	s, err := buildScaler(t, tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	target := externalTarget(t, s)
	if target.Type != autoscalingv2.AverageValueMetricType {
		t.Fatalf("KEDA's default metric type is %s", target.Type)
	}
	for _, load := range []float64{12, 20, 50} {
		needed := clamp(int32(math.Ceil(load/2)), tr.min, tr.max)
		got := clamp(hpaDesired(target, queryValue("AVG", load, needed), needed), tr.min, tr.max)
		t.Logf("load %v: at the %d replicas it needs, the seed's shape recommends %d", load, needed, got)
		if got > needed/2 {
			t.Errorf("load %v at %d replicas: seed shape recommends %d, expected far fewer", load, needed, got)
		}
	}
}

func targetString(t autoscalingv2.MetricTarget) string {
	if t.AverageValue != nil {
		return t.AverageValue.String()
	}
	if t.Value != nil {
		return t.Value.String()
	}
	return "?"
}

// TestAMPTriggerValueThroughKedasScaler runs the amp trigger's rendered
// query through KEDA's prometheus scaler against a loopback stand-in for the
// AMP query API: KEDA sends the query as rendered, signs it with SigV4 for
// service aps (podIdentity aws, no authModes), and reports the value the
// arithmetic above uses.
func TestAMPTriggerValueThroughKedasScaler(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	tr := triggers(t, renderOverlay(t, repoRoot(t), "amp"))[0]
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

	s, err := buildScaler(t, tr, map[string]string{"serverAddress": srv.URL + "/workspaces/" + "ws-test"})
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
	if gotQuery != tr.spec.Metadata["query"] {
		t.Errorf("KEDA sent query %q, rendered %q", gotQuery, tr.spec.Metadata["query"])
	}
	if !strings.HasPrefix(gotAuth, "AWS4-HMAC-SHA256 ") || !strings.Contains(gotAuth, "/aps/aws4_request") {
		t.Errorf("Authorization %q is not SigV4 for service aps", gotAuth)
	}
	if len(metrics) != 1 || metrics[0].Value.AsApproximateFloat64() != 17 || !active {
		t.Fatalf("KEDA reports %v active=%v, want 17 and active", metrics, active)
	}
	target := externalTarget(t, s)
	if got := clamp(hpaDesired(target, 17, 1), tr.min, tr.max); got != 9 {
		t.Errorf("17 requests in flight: HPA asks %d replicas, want ceil(17/2) = 9", got)
	}
}
