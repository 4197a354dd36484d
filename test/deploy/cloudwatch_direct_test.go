package deploy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	vegeta "github.com/tsenart/vegeta/v12/lib"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keda-eks-samples/workloads/pkg/testutil/cwtest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

// CloudWatch-direct (issue 10, must-show 3): the real webapi binary's
// CloudWatch exporter → the loopback CloudWatch stand-in → KEDA v2.21's
// aws-cloudwatch scaler built from the cloudwatch-direct overlay's rendered
// trigger, only awsEndpoint pointed at the stand-in.
const (
	// directRate is the constant arrival rate vegeta drives, requests/s.
	directRate = 20
	// directInterval is webapi's export interval (OTEL_METRIC_EXPORT_INTERVAL):
	// one PutMetricData with RequestPerSecond = requests in the window /
	// window seconds.
	directInterval = 2 * time.Second
	// directTolerance: each 2 s window counts whole requests, so a window
	// can be one request (0.5/s = 2.5% of 20/s) off, and a busy 2-core CI
	// machine can delay vegeta's ticks or the exporter's timer by a few
	// tens of milliseconds; the AVG over the minute's windows stays well
	// inside 10%.
	directTolerance = 0.10
)

// TestCloudWatchDirectRateThroughKedasScaler drives webapi at a known
// constant rate and checks that KEDA's own scaler, reading the overlay's
// trigger (SELECT AVG(RequestPerSecond) FROM SCHEMA(ns, Host), period 60,
// metricEndTimeOffset 60), reports that rate.
//
// The trigger reads the newest whole minute that ended 60 s before "now";
// neither KEDA's clock nor the stand-in's can be injected. The stand-in
// therefore stores every datapoint two minutes earlier than sent
// (cwtest.WithTimeShift, test-only): a poll at time T then reads exactly
// the datapoints sent since the start of T's minute. The test waits for a
// minute boundary after the load is steady and polls a few export
// intervals later, so that bucket holds steady-state windows only.
func TestCloudWatchDirectRateThroughKedasScaler(t *testing.T) {
	if testing.Short() {
		t.Skip("runs webapi under load for up to ~80 s")
	}
	// KEDA's scaler logs through controller-runtime, which prints a stack
	// trace when no logger is set 30 s into the process.
	ctrllog.SetLogger(logr.Discard())
	tr := triggers(t, renderOverlay(t, repoRoot(t), "cloudwatch-direct"))[0]
	if tr.spec.Type != "aws-cloudwatch" || tr.spec.Metadata["metricStatPeriod"] != "60" || tr.spec.Metadata["metricEndTimeOffset"] != "60" {
		t.Fatalf("cloudwatch-direct trigger changed (%s, %v): revisit the time shift", tr.spec.Type, tr.spec.Metadata)
	}
	_, params := readParams(t, repoRoot(t)+"/deploy/kustomize/params/params.env")
	namespace := params["CLOUDWATCH_NAMESPACE"]

	cw := cwtest.New(t, cwtest.WithTimeShift(-2*time.Minute))
	cwtest.ClearAWSEnv(t)
	// KEDA's podIdentity aws resolves the SDK's default chain: static keys.
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")

	bin := svctest.Build(t, "services/webapi")
	env := svctest.Env(t, map[string]string{
		"OTEL_METRICS_EXPORTER":       "cloudwatch",
		"OTEL_METRIC_EXPORT_INTERVAL": fmt.Sprint(directInterval.Milliseconds()),
		"AWS_ENDPOINT_URL_CLOUDWATCH": cw.URL,
		"AWS_REGION":                  "us-east-1",
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"POD_NAME":                    "webapi-0",
		"CLOUDWATCH_NAMESPACE":        namespace,
		"LOG_LEVEL":                   "info",
	})
	url := "http://127.0.0.1:" + env["PORT"]
	p := svctest.StartBinary(t, bin, env)
	p.WaitReady(t, url)

	// Constant arrival rate on the cheapest route, until the test ends.
	attacker := vegeta.NewAttacker(vegeta.Timeout(5 * time.Second))
	results := attacker.Attack(vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: url + "/"}),
		vegeta.Rate{Freq: directRate, Per: time.Second}, 0, "cloudwatch-direct")
	var metrics vegeta.Metrics
	attackDone := make(chan struct{})
	go func() {
		defer close(attackDone)
		for r := range results {
			metrics.Add(r)
		}
	}()
	stopAttack := func() {
		attacker.Stop()
		<-attackDone
		metrics.Close()
	}
	defer func() {
		select {
		case <-attackDone:
		default:
			stopAttack()
		}
	}()

	// Steady once two whole export windows have run under load; then the
	// next minute boundary, then three more windows inside that minute.
	steady := time.Now().Add(2*directInterval + directInterval/2)
	boundary := steady.Truncate(time.Minute).Add(time.Minute)
	poll := boundary.Add(3*directInterval + directInterval/2)
	if err := svctest.Poll(time.Until(poll)+10*time.Second, func() (bool, error) {
		select {
		case <-p.Done():
			return false, fmt.Errorf("webapi exited:\n%s", p.Output.String())
		default:
			return !time.Now().Before(poll), nil
		}
	}); err != nil {
		t.Fatal(err)
	}

	s, err := buildScaler(t, tr, map[string]string{"awsEndpoint": cw.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	name := s.GetMetricSpecForScaling(context.Background())[0].External.Metric.Name
	if now := time.Now(); !now.Truncate(time.Minute).Equal(boundary) {
		t.Fatalf("poll at %v slipped out of the minute starting %v (machine too slow)", now, boundary)
	}
	got, active, err := s.GetMetricsAndActivity(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	stopAttack()

	var inBucket []float64
	for _, c := range cw.Calls() {
		for _, d := range c.Data {
			if !d.Timestamp.Before(boundary) {
				inBucket = append(inBucket, d.Value)
			}
		}
	}
	if metrics.Success < 0.99 {
		t.Fatalf("vegeta: success %.3f, errors %v", metrics.Success, metrics.Errors)
	}
	if len(got) != 1 {
		t.Fatalf("KEDA reports %v, want one metric", got)
	}
	value := got[0].Value.AsApproximateFloat64()
	t.Logf("vegeta %.1f req/s (%d requests); RequestPerSecond datapoints in the bucket KEDA read: %v; KEDA reports %.3f, active=%v",
		metrics.Rate, metrics.Requests, inBucket, value, active)
	if len(inBucket) < 3 {
		t.Errorf("only %d datapoints in the minute KEDA read, want at least 3", len(inBucket))
	}
	if lo, hi := directRate*(1-directTolerance), directRate*(1+directTolerance); value < lo || value > hi || !active {
		t.Errorf("KEDA's aws-cloudwatch scaler reports %.3f (active %v) for %d req/s, want within [%.1f, %.1f] and active",
			value, active, directRate, lo, hi)
	}
	// What the HPA makes of it (metricType Value, target 2, one replica).
	t.Logf("HPA would ask %d replicas (%d for exactly %d req/s)",
		clamp(hpaDesired(externalTarget(t, s), value, 1), tr.min, tr.max),
		clamp(hpaDesired(externalTarget(t, s), directRate, 1), tr.min, tr.max), directRate)
	if strings.Contains(p.Output.String(), "level=ERROR") {
		t.Errorf("webapi logged errors:\n%s", p.Output.String())
	}
}
