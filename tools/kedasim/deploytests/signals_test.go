package deploytests

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/kedacore/keda/v2/pkg/scalers"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/kedascaler"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
	"github.com/keda-eks-samples/workloads/tools/kedasim/scalemath"
)

// The signal tests: real components on 127.0.0.1 (our services as built
// binaries, the SQS emulator, our collector, Prometheus) carry a signal to
// KEDA's own scaler, built from the rendered overlay's trigger with only the
// addresses of the local components overridden.

// KEDA's scalers log through controller-runtime's delegating logger, which
// prints a stack trace once a test has run 30 s without a logger set.
func init() { ctrllog.SetLogger(logr.Discard()) }

// serveLoopback runs srv on a free 127.0.0.1 port until t ends and returns
// its base URL.
func serveLoopback(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// onlyTrigger is the one trigger of type typ the overlay renders.
func onlyTrigger(t *testing.T, overlay, typ string) manifests.Trigger {
	t.Helper()
	var found []manifests.Trigger
	for _, tr := range triggers(t, renderOverlay(t, svctest.RepoRoot(t), overlay)) {
		if tr.Spec.Type == typ {
			found = append(found, tr)
		}
	}
	if len(found) != 1 {
		t.Fatalf("overlay %s renders %d %s triggers, want 1", overlay, len(found), typ)
	}
	return found[0]
}

// localScaler builds tr with KEDA's own constructor
// (kedascaler.BuildScaler), its metadata as rendered but for override (the
// addresses of the local components), and closes it when the test ends. It also returns the HPA
// target KEDA generates and the replica count the HPA would want for a
// metric value at a current count, within the owner's min and max.
func localScaler(t *testing.T, tr manifests.Trigger, override map[string]string) (scalers.Scaler, autoscalingv2.MetricTarget, func(metric float64, current int32) int32) {
	t.Helper()
	s, err := kedascaler.BuildScaler(t.Context(), tr, override)
	if err != nil {
		t.Fatalf("%s: KEDA's %s scaler: %v", tr.Owner, tr.Spec.Type, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	if tr.Kind != "ScaledObject" {
		return s, autoscalingv2.MetricTarget{}, nil
	}
	target := externalTarget(t, s)
	return s, target, func(metric float64, current int32) int32 {
		return scalemath.Clamp(scalemath.HPADesired(target, metric, current), tr.Min, tr.Max)
	}
}

// waitKeda polls s every interval until cond holds for a reading and returns
// that reading and every distinct value seen on the way; it fails t after
// timeout. A scaler error is retried (KEDA's loop retries too) but reported
// if the deadline passes.
func waitKeda(t *testing.T, s scalers.Scaler, interval, timeout time.Duration, what string, cond func(kedascaler.Reading) bool) (kedascaler.Reading, []float64) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []float64
	var last kedascaler.Reading
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		r, err := kedascaler.Poll(ctx, s)
		cancel()
		if err == nil {
			last, lastErr = r, nil
			if len(seen) == 0 || seen[len(seen)-1] != r.Value {
				seen = append(seen, r.Value)
			}
			if cond(r) {
				return r, seen
			}
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("KEDA's scaler: %s not reached within %v (last %+v, error %v, values seen %v)", what, timeout, last, lastErr, seen)
		}
		select {
		case <-time.After(interval):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}
