// Package otlptest is an OTLP/HTTP metrics receiver for tests: it decodes
// the real protobuf export requests a service sends (the OTel SDK's
// otlpmetrichttp exporter, selected by OTEL_* variables) so a test checks
// metrics on the wire rather than through a mock of its own instruments.
package otlptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricpb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
)

// Receiver collects every export request.
type Receiver struct {
	URL string // base URL: set OTEL_EXPORTER_OTLP_ENDPOINT to it

	mu   sync.Mutex
	reqs []*colmetricpb.ExportMetricsServiceRequest
}

// New starts a receiver for the duration of t.
func New(t testing.TB) *Receiver {
	r := &Receiver{}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Env is the environment that points an OTel SDK at the receiver (OTLP over
// HTTP, protobuf) with the given export interval in milliseconds: for a
// child process's environment, or this process's (Setenv).
func (r *Receiver) Env(intervalMillis string) map[string]string {
	return map[string]string{
		"OTEL_METRICS_EXPORTER":       "otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL,
		"OTEL_METRIC_EXPORT_INTERVAL": intervalMillis,
	}
}

// Setenv sets Env in the process's environment for the test. The SDK reads
// OTEL_* from there, so tests using it cannot be parallel.
func (r *Receiver) Setenv(t *testing.T, intervalMillis string) {
	for k, v := range r.Env(intervalMillis) {
		t.Setenv(k, v)
	}
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	msg := &colmetricpb.ExportMetricsServiceRequest{}
	if err != nil || req.URL.Path != "/v1/metrics" || req.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, msg) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, msg)
	r.mu.Unlock()
	out, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Point is one number data point as exported.
type Point struct {
	Value      float64
	Attributes map[string]string // string-valued attributes
}

// Metric returns the data points of the newest export of the named metric
// from a resource whose service.name is service, and the metric itself
// (for its type, unit, temporality). ok is false until one was exported.
func (r *Receiver) Metric(service, name string) (m *metricpb.Metric, points []Point, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.reqs) - 1; i >= 0; i-- {
		for _, rm := range r.reqs[i].GetResourceMetrics() {
			if attrs(rm.GetResource().GetAttributes())["service.name"] != service {
				continue
			}
			for _, sm := range rm.GetScopeMetrics() {
				for _, m := range sm.GetMetrics() {
					if m.GetName() == name {
						return m, pointsOf(m), true
					}
				}
			}
		}
	}
	return nil, nil, false
}

// Resource returns the string attributes of the resource of the newest
// export from service (by service.name); ok is false until one arrived.
func (r *Receiver) Resource(service string) (attributes map[string]string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.reqs) - 1; i >= 0; i-- {
		for _, rm := range r.reqs[i].GetResourceMetrics() {
			if a := attrs(rm.GetResource().GetAttributes()); a["service.name"] == service {
				return a, true
			}
		}
	}
	return nil, false
}

// Value is the value of the newest point of the named metric whose
// attributes include want; ok is false if there is none yet.
func (r *Receiver) Value(service, name string, want map[string]string) (float64, bool) {
	_, points, _ := r.Metric(service, name)
	for _, p := range points {
		if matches(p.Attributes, want) {
			return p.Value, true
		}
	}
	return 0, false
}

// Await waits, up to timeout, for the named metric of service to have a
// point with want's attributes whose value passes pass. If none does, it
// fails t with the metric, the attributes and the last value seen (or that
// none was exported), and returns false.
func (r *Receiver) Await(t testing.TB, timeout time.Duration, service, name string, want map[string]string, pass func(float64) bool) bool {
	t.Helper()
	err := localproc.Poll(timeout, func() (bool, error) {
		v, ok := r.Value(service, name, want)
		return ok && pass(v), nil
	})
	if err != nil {
		v, ok := r.Value(service, name, want)
		t.Errorf("%s %v on the wire: got %v (exported: %v) after %s", name, want, v, ok, timeout)
		return false
	}
	return true
}

func pointsOf(m *metricpb.Metric) []Point {
	var out []Point
	number := func(dps []*metricpb.NumberDataPoint) {
		for _, dp := range dps {
			v := dp.GetAsDouble()
			if _, isInt := dp.GetValue().(*metricpb.NumberDataPoint_AsInt); isInt {
				v = float64(dp.GetAsInt())
			}
			out = append(out, Point{Value: v, Attributes: attrs(dp.GetAttributes())})
		}
	}
	switch d := m.GetData().(type) {
	case *metricpb.Metric_Sum:
		number(d.Sum.GetDataPoints())
	case *metricpb.Metric_Gauge:
		number(d.Gauge.GetDataPoints())
	case *metricpb.Metric_Histogram:
		for _, dp := range d.Histogram.GetDataPoints() { // the count of observations
			out = append(out, Point{Value: float64(dp.GetCount()), Attributes: attrs(dp.GetAttributes())})
		}
	}
	return out
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	return m
}

func matches(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// Stalled is an OTLP endpoint that takes export requests and never answers
// them, until the exporter gives up or the test ends: a hung collector.
type Stalled struct {
	URL      string // set OTEL_EXPORTER_OTLP_ENDPOINT to it
	requests atomic.Int64
}

// NewStalled starts a stalled endpoint for the duration of t.
func NewStalled(t testing.TB) *Stalled {
	s := &Stalled{}
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		select {
		case <-r.Context().Done():
		case <-gone:
		}
	}))
	t.Cleanup(func() { close(gone); srv.Close() })
	s.URL = srv.URL
	return s
}

// Requests is the number of export requests that arrived.
func (s *Stalled) Requests() int { return int(s.requests.Load()) }
