package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/keda-eks-samples/workloads/pkg/telemetry"
	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
)

// otlpReceiver decodes real OTLP/HTTP protobuf export requests.
type otlpReceiver struct {
	mu   sync.Mutex
	reqs []*colmetricpb.ExportMetricsServiceRequest
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	req := &colmetricpb.ExportMetricsServiceRequest{}
	if err != nil || r.URL.Path != "/v1/metrics" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.reqs = append(o.reqs, req)
	o.mu.Unlock()
	out, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// activeRequests returns the latest exported http.server.active_requests
// value for GET/http from a resource named webapi, and whether one was seen.
func (o *otlpReceiver) activeRequests() (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.reqs) - 1; i >= 0; i-- {
		for _, rm := range o.reqs[i].GetResourceMetrics() {
			if attr(rm.GetResource().GetAttributes(), "service.name") != serviceName {
				continue
			}
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					if m.GetName() != telemetry.ActiveRequests || m.GetSum() == nil || m.GetSum().GetIsMonotonic() || m.GetUnit() != "{request}" {
						continue
					}
					for _, dp := range m.GetSum().GetDataPoints() {
						if attr(dp.GetAttributes(), "http.request.method") == "GET" && attr(dp.GetAttributes(), "url.scheme") == "http" {
							return dp.GetAsInt(), true
						}
					}
				}
			}
		}
	}
	return 0, false
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

func TestActiveRequestsRiseAndFallOnTheOTLPWire(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	t.Setenv("OTEL_METRICS_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "50")

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
	waitActive := func(want int64) {
		t.Helper()
		if err := svctest.Poll(20*time.Second, func() (bool, error) {
			v, ok := recv.activeRequests()
			return ok && v == want, nil
		}); err != nil {
			v, ok := recv.activeRequests()
			t.Fatalf("active requests on the wire: got %d (seen %v), want %d", v, ok, want)
		}
	}
	waitActive(slow)
	close(release) // clients give up; the handler frees its slot at once
	wg.Wait()
	waitActive(0)
}
