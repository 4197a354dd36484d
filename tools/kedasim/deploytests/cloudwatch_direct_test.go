package deploytests

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/kedascaler"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
	"github.com/keda-eks-samples/workloads/tools/kedasim/scalemath"
)

// CloudWatch-direct (issue 10, must-show 3): two real webapi processes with
// the overlay's CloudWatch exporter settings → the loopback CloudWatch
// stand-in → KEDA v2.21's aws-cloudwatch scaler built from the
// cloudwatch-direct overlay's rendered trigger, only awsEndpoint pointed at
// the stand-in.

// directRates are the constant arrival rates vegeta drives at the two
// webapi processes (the two pods), requests/s. Different on purpose: the
// SUM must add them, an AVG would report their mean.
var directRates = [2]float64{9, 5}

// directTolerance: each pod's RequestPerSecond is the whole requests of its
// ~60 s export window over the window's length, so it can be a request
// (1/60 req/s) off per pod, and a busy 2-core machine delays vegeta's ticks
// or the exporter's timer by some tens of milliseconds. 5% of the total rate
// is several times that; the bucket itself is aligned so that it holds
// exactly one export per pod (the trigger's documented residual noise, a
// pod landing 0 or 2 points in a bucket, is what the alignment excludes).
const directTolerance = 0.05

// overlayContainerEnv returns the env of container name in Deployment
// deployment of the rendered objects.
func overlayContainerEnv(t *testing.T, objs []manifests.Object, deployment, name string) map[string]string {
	t.Helper()
	for _, o := range objs {
		if o.Kind != "Deployment" || o.Name != deployment {
			continue
		}
		v, err := manifests.DecodeStrict(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range v.(*appsv1.Deployment).Spec.Template.Spec.Containers {
			if c.Name == name {
				return envOf(c)
			}
		}
	}
	t.Fatalf("no container %s in Deployment/%s", name, deployment)
	return nil
}

// TestCloudWatchDirectRateThroughKedasScaler drives two webapi processes at
// known constant rates, with the export interval the overlay ships, and
// checks that KEDA's own scaler, reading the overlay's trigger
// (SELECT SUM(RequestPerSecond) FROM SCHEMA(ns, Host), period 60,
// metricEndTimeOffset 60), reports the total rate.
//
// The trigger reads the newest whole minute that ended 60 s before "now";
// neither KEDA's clock nor the webapi's can be injected. The processes
// start at S and export at about S+60, S+120, ...; the first window
// includes start-up without load, the second (ending near S+120) is under
// load throughout. The stand-in stores every datapoint shifted
// (cwstandin.WithTimeShift, test-only) so that the bucket a poll in minute m
// reads, [m-120 s, m-60 s) in stored time, is [S+90 s, S+150 s) in the time
// the datapoints were sent: exactly the second export of each process, with
// 30 s of margin on either side. The poll runs between S+130 s and S+145 s,
// away from a minute boundary. About 2.5 minutes.
func TestCloudWatchDirectRateThroughKedasScaler(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two webapi processes under load for ~2.5 minutes")
	}
	// Minutes of waiting: the long signal tests overlap. TestMain gives
	// KEDA's podIdentity aws (the SDK's default chain) static keys.
	t.Parallel()
	objs := renderOverlay(t, svctest.RepoRoot(t), "cloudwatch-direct")
	tr := triggers(t, objs)[0]
	md := tr.Spec.Metadata
	if tr.Spec.Type != "aws-cloudwatch" || md["metricStatPeriod"] != "60" || md["metricEndTimeOffset"] != "60" ||
		!strings.HasPrefix(md["expression"], "SELECT SUM(RequestPerSecond) ") {
		t.Fatalf("cloudwatch-direct trigger changed (%s, %v): revisit the time shift", tr.Spec.Type, md)
	}
	shipped := overlayContainerEnv(t, objs, "webapi", "webapi")
	ms, err := strconv.Atoi(shipped["OTEL_METRIC_EXPORT_INTERVAL"])
	if err != nil || shipped["OTEL_METRICS_EXPORTER"] != "cloudwatch" {
		t.Fatalf("overlay's webapi env %v: want OTEL_METRICS_EXPORTER cloudwatch and an OTEL_METRIC_EXPORT_INTERVAL (%v)", shipped, err)
	}
	interval := time.Duration(ms) * time.Millisecond
	if interval != time.Minute {
		t.Fatalf("overlay exports every %s; the trigger's SUM over 60 s periods needs exactly one export per pod per period", interval)
	}
	namespace := shipped["CLOUDWATCH_NAMESPACE"]

	// The stand-in's time shift depends on when the processes start, so
	// its handler is created then; until then nothing calls it.
	var cwh atomic.Pointer[cwstandin.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := cwh.Load(); h != nil {
			h.ServeHTTP(w, r)
			return
		}
		t.Errorf("CloudWatch called before the stand-in is set up: %s", r.URL)
		http.Error(w, "not yet", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)

	bin := svctest.Build(t, "services/webapi")
	var urls [2]string
	var procs [2]*svctest.Process
	start := time.Now()
	// The poll: S+130 s, or 5 s into the next minute if S+130 s is in the
	// last 10 s of one. The shift maps [S+90 s, S+150 s) (sent) onto
	// [m-120 s, m-60 s) (stored) for the poll's minute m.
	poll := start.Add(130 * time.Second)
	if poll.Sub(poll.Truncate(time.Minute)) > 50*time.Second {
		poll = poll.Truncate(time.Minute).Add(time.Minute + 5*time.Second)
	}
	minute := poll.Truncate(time.Minute)
	shift := minute.Add(-2 * time.Minute).Sub(start.Add(90 * time.Second))
	cwh.Store(cwstandin.NewHandler(func(err error) { t.Errorf("CloudWatch stand-in: %v", err) }, cwstandin.WithTimeShift(shift)))
	for i := range procs {
		env := svctest.Env(t, map[string]string{
			"OTEL_METRICS_EXPORTER":       shipped["OTEL_METRICS_EXPORTER"],
			"OTEL_METRIC_EXPORT_INTERVAL": shipped["OTEL_METRIC_EXPORT_INTERVAL"],
			"CLOUDWATCH_NAMESPACE":        namespace,
			"AWS_ENDPOINT_URL_CLOUDWATCH": srv.URL,
			"AWS_REGION":                  "us-east-1",
			"AWS_ACCESS_KEY_ID":           "test",
			"AWS_SECRET_ACCESS_KEY":       "test",
			"AWS_EC2_METADATA_DISABLED":   "true",
			"POD_NAME":                    fmt.Sprintf("webapi-%d", i),
			"LOG_LEVEL":                   "info",
		})
		urls[i] = "http://127.0.0.1:" + env["PORT"]
		procs[i] = svctest.StartBinary(t, bin, env)
	}
	for i, p := range procs {
		p.WaitReady(t, urls[i])
	}
	if ready := time.Since(start); ready > 20*time.Second {
		t.Fatalf("webapi took %s to start; the second export window would not be under load throughout", ready)
	}

	// Constant arrival rates on the cheapest route, until the poll.
	var attackers [2]*vegeta.Attacker
	var metrics [2]vegeta.Metrics
	var attackDone [2]chan struct{}
	for i := range attackers {
		attackers[i] = vegeta.NewAttacker(vegeta.Timeout(5 * time.Second))
		results := attackers[i].Attack(vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: urls[i] + "/"}),
			vegeta.ConstantPacer{Freq: int(directRates[i]), Per: time.Second}, 0, fmt.Sprintf("webapi-%d", i))
		attackDone[i] = make(chan struct{})
		go func() {
			defer close(attackDone[i])
			for r := range results {
				metrics[i].Add(r)
			}
		}()
	}
	stopped := false
	stopAttacks := func() {
		if stopped {
			return
		}
		stopped = true
		for i := range attackers {
			attackers[i].Stop()
			<-attackDone[i]
			metrics[i].Close()
		}
	}
	defer stopAttacks()

	if err := localproc.Poll(time.Until(poll)+10*time.Second, func() (bool, error) {
		for i, p := range procs {
			select {
			case <-p.Done():
				return false, fmt.Errorf("webapi-%d exited:\n%s", i, p.Output.String())
			default:
			}
		}
		return !time.Now().Before(poll), nil
	}); err != nil {
		t.Fatal(err)
	}

	s, err := kedascaler.BuildScaler(t.Context(), tr, map[string]string{"awsEndpoint": srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	name := s.GetMetricSpecForScaling(context.Background())[0].External.Metric.Name
	got, active, err := s.GetMetricsAndActivity(context.Background(), name)
	if now := time.Now(); !now.Truncate(time.Minute).Equal(minute) {
		t.Fatalf("poll at %v slipped out of the minute starting %v (machine too slow)", now, minute)
	}
	if err != nil {
		t.Fatal(err)
	}
	stopAttacks()

	// The datapoints in the bucket KEDA read, [m-120 s, m-60 s) stored.
	var total float64
	perHost := map[string][]float64{}
	for _, d := range cwh.Load().Datapoints() {
		if !d.Timestamp.Before(minute.Add(-2*time.Minute)) && d.Timestamp.Before(minute.Add(-time.Minute)) {
			perHost[d.Dimensions["Host"]] = append(perHost[d.Dimensions["Host"]], d.Sum)
		}
	}
	for i := range procs {
		if metrics[i].Success < 0.99 {
			t.Fatalf("vegeta webapi-%d: success %.3f, errors %v", i, metrics[i].Success, metrics[i].Errors)
		}
		total += directRates[i]
		host := fmt.Sprintf("webapi-%d", i)
		t.Logf("%s: vegeta %.2f req/s (%d requests); its RequestPerSecond in the bucket KEDA read: %v",
			host, metrics[i].Rate, metrics[i].Requests, perHost[host])
		if len(perHost[host]) != 1 {
			t.Errorf("%s has %d datapoints in the minute KEDA read, want exactly one", host, len(perHost[host]))
		}
	}
	if len(got) != 1 {
		t.Fatalf("KEDA reports %v, want one metric", got)
	}
	value := got[0].Value.AsApproximateFloat64()
	var sum, n float64
	for _, vs := range perHost {
		for _, v := range vs {
			sum, n = sum+v, n+1
		}
	}
	t.Logf("KEDA's SUM: %.3f for %.0f req/s in total (%v), active=%v; an AVG would have read %.3f",
		value, total, directRates, active, sum/n)
	if math.Abs(value-total) > directTolerance*total || !active {
		t.Errorf("KEDA's aws-cloudwatch scaler reports %.3f (active %v) for %.0f req/s over two pods, want within %.0f%% and active",
			value, active, total, directTolerance*100)
	}
	// What the HPA makes of it (AverageValue, target 2): ceil(total / 2).
	target := externalTarget(t, s)
	t.Logf("HPA asks %d replicas (%d for exactly %.0f req/s), whatever the current count",
		scalemath.Clamp(scalemath.HPADesired(target, value, 1), tr.Min, tr.Max), scalemath.Clamp(scalemath.HPADesired(target, total, 1), tr.Min, tr.Max), total)
	for i, p := range procs {
		if strings.Contains(p.Output.String(), "level=ERROR") {
			t.Errorf("webapi-%d logged errors:\n%s", i, p.Output.String())
		}
	}
}
