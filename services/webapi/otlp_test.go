package main

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/telemetry"
	"github.com/keda-eks-samples/workloads/pkg/testutil/otlptest"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

func TestActiveRequestsRiseAndFallOnTheOTLPWire(t *testing.T) {
	recv := otlptest.New(t)
	recv.Setenv(t, "50")

	const slow = 3
	release := make(chan struct{})
	s := svctest.Start(t, run, svctest.Env(t, map[string]string{"WEATHER_MIN_DELAY": "30s", "WEATHER_MAX_DELAY": "30s"}))
	var wg sync.WaitGroup
	for range slow {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/weatherforecast", nil)
			ctx, cancel := contextUntil(release)
			defer cancel()
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	get := map[string]string{"http.request.method": "GET", "url.scheme": "http"}
	waitActive := func(want float64) {
		t.Helper()
		if !recv.Await(t, 20*time.Second, serviceName, telemetry.ActiveRequests, get, func(v float64) bool { return v == want }) {
			t.Fatalf("want %v active requests", want)
		}
		if m, _, _ := recv.Metric(serviceName, telemetry.ActiveRequests); m.GetSum() == nil || m.GetSum().GetIsMonotonic() || m.GetUnit() != "{request}" {
			t.Fatalf("%s exported as %v, want a non-monotonic sum in {request}", telemetry.ActiveRequests, m)
		}
	}
	waitActive(slow)
	close(release) // clients give up; the handler frees its slot at once
	wg.Wait()
	waitActive(0)
}
