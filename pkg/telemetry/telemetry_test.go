package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/keda-eks-samples/workloads/pkg/buildinfo"
	"github.com/keda-eks-samples/workloads/pkg/testutil/otlptest"
)

// activeRequests collects the reader and returns the GET/http data point.
func activeRequests(t *testing.T, r *sdkmetric.ManualReader) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	want := attribute.NewSet(attribute.String("http.request.method", "GET"), attribute.String("url.scheme", "http"))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != ActiveRequests {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || sum.IsMonotonic {
				t.Fatalf("%s is %T (monotonic=%v), want a non-monotonic int64 sum", m.Name, m.Data, sum.IsMonotonic)
			}
			for _, dp := range sum.DataPoints {
				if dp.Attributes.Equals(&want) {
					return dp.Value
				}
			}
		}
	}
	return -1
}

func TestActiveRequestsRiseDuringConcurrentRequestsAndReturnToZero(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	var entered sync.WaitGroup
	release := make(chan struct{})
	h, err := InstrumentHTTP(mp, "test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Done()
		<-release
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	const n = 7
	entered.Add(n)
	var done sync.WaitGroup
	for range n {
		done.Go(func() {
			if resp, err := http.Get(srv.URL); err == nil {
				resp.Body.Close()
			}
		})
	}
	entered.Wait()
	if got := activeRequests(t, reader); got != n {
		t.Fatalf("active requests with %d in flight = %d", n, got)
	}
	close(release)
	done.Wait()
	if got := activeRequests(t, reader); got != 0 {
		t.Fatalf("active requests after all finished = %d", got)
	}
}

// TestInstrumentHTTPRecordsDurationButNotBodySizes: the request duration
// (the source of RequestPerSecond) is recorded for every request; the body
// size histograms, which nothing reads, are not recorded at all.
func TestInstrumentHTTPRecordsDurationButNotBodySizes(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	h, err := InstrumentHTTP(mp, "test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, r.Body)
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	const n = 3
	for range n {
		resp, err := http.Post(srv.URL, "text/plain", strings.NewReader("a body of some size"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var names []string
	var requests uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			names = append(names, m.Name)
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == RequestDuration {
				for _, dp := range h.DataPoints {
					requests += dp.Count
				}
			}
		}
	}
	slices.Sort(names)
	if want := []string{ActiveRequests, RequestDuration}; !slices.Equal(names, want) {
		t.Errorf("metrics %v, want %v", names, want)
	}
	if requests != n {
		t.Errorf("%s counted %d requests, want %d", RequestDuration, requests, n)
	}
}

func TestSetupKeepsMetricsLocalWhenNothingIsConfigured(t *testing.T) {
	t.Setenv("OTEL_METRICS_EXPORTER", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "")
	tel, err := Setup(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), "svc")
	if err != nil {
		t.Fatal(err)
	}
	if tel.Exporter() != "none" {
		t.Fatalf("exporter %q", tel.Exporter())
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSetupRejectsUnknownExporterAndUnsupportedCloudWatch(t *testing.T) {
	for _, name := range []string{"carrier-pigeon", ExporterName} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("OTEL_METRICS_EXPORTER", name)
			if _, err := Setup(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), "svc"); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

// exportedResource runs Setup against an OTLP receiver, records one counter
// increment, flushes, and returns the resource attributes on the wire.
func exportedResource(t *testing.T) map[string]string {
	t.Helper()
	recv := otlptest.New(t)
	recv.Setenv(t, "3600000") // the only export is the flush at Shutdown
	tel, err := Setup(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), "svc")
	if err != nil {
		t.Fatal(err)
	}
	c, err := tel.MeterProvider().Meter("test").Int64Counter("test.count")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 1)
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, ok := recv.Resource("svc")
	if !ok {
		t.Fatal("no export from service svc reached the receiver")
	}
	return res
}

func TestResourceCarriesTheBuildVersion(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	if got := exportedResource(t)["service.version"]; got != buildinfo.Version {
		t.Errorf("service.version = %q, want the build's %q", got, buildinfo.Version)
	}
}

func TestResourceAttributesFromTheEnvironmentWinOverTheBuildVersion(t *testing.T) {
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "service.version=from-env,deployment.environment.name=test")
	res := exportedResource(t)
	if res["service.version"] != "from-env" || res["deployment.environment.name"] != "test" {
		t.Errorf("resource = %v, want service.version=from-env from OTEL_RESOURCE_ATTRIBUTES", res)
	}
}

// A shutdown that no signal started (run returned on its own) still bounds
// its flush: by the budget when that is under FlushTimeout.
func TestShutdownWithinBoundsAFlushToAHungCollector(t *testing.T) {
	collector := otlptest.NewStalled(t)
	t.Setenv("OTEL_METRICS_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000")
	tel, err := Setup(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)), "svc")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := tel.ShutdownWithin(context.Background(), time.Second); err == nil {
		t.Fatal("a flush the collector never answered reported success")
	}
	// A generous bound on the fact, not a measurement: FlushTimeout is 5s.
	if took := time.Since(start); took > 3*time.Second || collector.Requests() == 0 {
		t.Fatalf("flush took %s with %d export attempts; want it cut by the 1s budget after trying", took, collector.Requests())
	}
}
