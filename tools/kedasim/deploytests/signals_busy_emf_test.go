package deploytests

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/cwstandin"
	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/keda-eks-samples/workloads/pkg/testutil/cwtest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/kedascaler"
	"github.com/keda-eks-samples/workloads/tools/kedasim/scalemath"
)

// The sidecar and gateway overlays' trigger on what ships: L clients hold
// requests in flight, round robin over three webapi processes with the
// gateway overlay's env (60 s exports as deltas) and webapi's shipped answer
// times (0-1.5 s at random), started 20 s apart so their export instants
// differ by about 20 s. All export to one collector on the shipped cloudwatch.yaml, whose
// EMF records reach the CloudWatch stand-in; KEDA's aws-cloudwatch scaler,
// built from the gateway overlay's trigger, reads SUM(busy seconds) of the
// newest whole minute that is a minute old. Each whole minute under load
// must read within 10 % of 60 × what the clients held, so the HPA asks for
// ⌈held/2⌉ ± 1 pods; once the load is gone, 0 and the minimum.
//
// Time: the stand-in stores every datapoint a minute early
// (cwstandin.WithTimeShift, test-only), so a poll at T reads the minute that
// ended at T's minute start. A pod's delta exported in that minute covers the
// 60 s before its export: the first minute read starts a minute after the
// load, so every delta in it is loaded time.
func TestEMFBusySecondsFromWebapiThroughCollectorToKeda(t *testing.T) {
	if testing.Short() {
		t.Skip("runs webapi under load for about 6 minutes")
	}
	t.Parallel() // minutes of waiting each: the long signal tests overlap
	tr, namespace, rendered := gatewaySignal(t)
	if e := tr.Spec.Metadata["expression"]; !strings.Contains(e, busySecondsEMF) {
		t.Fatalf("trigger expression %q does not read %s", e, busySecondsEMF)
	}
	if rendered["OTEL_METRIC_EXPORT_INTERVAL"] != "60000" || rendered["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"] != "delta" {
		t.Fatalf("gateway webapi exports every %q ms with temporality %q: the minute arithmetic below assumes 60000 and delta",
			rendered["OTEL_METRIC_EXPORT_INTERVAL"], rendered["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"])
	}
	if _, ok := rendered["WEATHER_MAX_DELAY"]; ok {
		t.Fatalf("gateway webapi sets WEATHER_MAX_DELAY: this test runs the shipped answer times")
	}

	cw := cwtest.New(t, cwstandin.WithTimeShift(-time.Minute))
	otlp := startCollector(t, "cloudwatch.yaml", "exporters:\n  awsemf:\n    endpoint: "+cw.URL+"\n", map[string]string{"CLOUDWATCH_NAMESPACE": namespace})

	const pods, inFlight = 3, 7
	bin := svctest.Build(t, "services/webapi")
	var urls []string
	for i := range pods {
		if i > 0 {
			// Export instants about 20 s apart.
			next := time.Now().Add(20 * time.Second)
			_ = localproc.Poll(25*time.Second, func() (bool, error) { return !time.Now().Before(next), nil })
		}
		env := webapiEnv(t, rendered, otlp, fmt.Sprintf("webapi-%d", i), nil)
		web := svctest.StartBinary(t, bin, env)
		url := "http://127.0.0.1:" + env["PORT"]
		web.WaitReady(t, url)
		urls = append(urls, url+"/weatherforecast")
	}

	s, target, desired := localScaler(t, tr, map[string]string{"awsEndpoint": cw.URL})
	if target.AverageValue == nil || target.AverageValue.AsApproximateFloat64() != 120 {
		t.Fatalf("gateway trigger target %s, want AverageValue 120 (2 in flight a pod × 60 s)", scalemath.TargetString(target))
	}
	const per = 60.0 // busy seconds a minute per request in flight
	loaded := time.Now()
	release, busy := holdRequests(t, "", urls, inFlight)
	type mark struct {
		at   time.Time
		busy float64
	}
	var marks []mark
	record := func() { marks = append(marks, mark{time.Now(), busy()}) }
	record()
	// held is what the clients held on average over [from, to].
	held := func(from, to time.Time) float64 {
		var a, b *mark
		for i := range marks {
			m := &marks[i]
			if a == nil && !m.at.Before(from.Add(-2*time.Second)) {
				a = m
			}
			if !m.at.After(to.Add(2 * time.Second)) {
				b = m
			}
		}
		if a == nil || b == nil || !b.at.After(a.at) {
			return math.NaN()
		}
		return (b.busy - a.busy) / b.at.Sub(a.at).Seconds()
	}

	// Two whole minutes, the first starting a minute after the load: each
	// pod's delta exported in it covers only loaded time.
	first := loaded.Add(time.Minute).Truncate(time.Minute).Add(time.Minute)
	var values []float64
	for m := range 2 {
		minute := first.Add(time.Duration(m) * time.Minute)
		poll := minute.Add(time.Minute + 10*time.Second) // the collector's 5 s batch
		_ = localproc.Poll(time.Until(poll)+5*time.Second, func() (bool, error) {
			record()
			return !time.Now().Before(poll), nil
		})
		r, _ := waitKeda(t, s, time.Second, 5*time.Second, "a reading", func(kedascaler.Reading) bool { return true })
		// The deltas in the minute cover from a minute before it to its end.
		h := held(minute.Add(-time.Minute), minute.Add(time.Minute))
		values = append(values, r.Value)
		d, w := desired(r.Value, 1), int32(math.Ceil(h/2))
		t.Logf("minute %s: KEDA reads %.1f busy seconds (%.2f in flight) for %.2f held -> HPA desired %d from 1 pod",
			minute.Format(time.TimeOnly), r.Value, r.Value/per, h, d)
		if off := math.Abs(r.Value/per-h) / h; off > 0.1 || !r.Active {
			t.Errorf("minute %s: KEDA reads %.1f busy seconds = %.2f in flight (active %v) for %.2f held by the clients: %.0f%% off, want within 10%%",
				minute.Format(time.TimeOnly), r.Value, r.Value/per, r.Active, h, 100*off)
		}
		if d < w-1 || d > w+1 {
			t.Errorf("minute %s: HPA desired %d for %.2f held, want ceil(%.2f/2) ± 1 = %d ± 1", minute.Format(time.TimeOnly), d, h, h, w)
		}
	}
	checkEMFShape(t, emfRecords(t, cw, "/metrics/"+namespace, busySecondsEMF), namespace, busySecondsEMF, "Seconds")
	t.Logf("%d clients over %d pods, answers 0-1.5 s, 60 s delta exports: KEDA read %v (%s %s)", inFlight, pods, values, target.Type, scalemath.TargetString(target))

	release()
	// No answer, no delta: the minute after the last export reads no data,
	// which the trigger's minMetricValue turns into 0.
	idle := time.Now().Add(time.Minute).Truncate(time.Minute).Add(time.Minute)
	_ = localproc.Poll(time.Until(idle.Add(time.Minute+10*time.Second))+5*time.Second, func() (bool, error) {
		return !time.Now().Before(idle.Add(time.Minute + 10*time.Second)), nil
	})
	r, _ := waitKeda(t, s, time.Second, 5*time.Second, "a reading", func(kedascaler.Reading) bool { return true })
	if down := desired(r.Value, 4); r.Value != 0 || r.Active || down != tr.Min {
		t.Errorf("no load: KEDA reads %v active=%v -> HPA desired %d, want 0, inactive and the minimum %d", r.Value, r.Active, down, tr.Min)
	}
}
