package collectortest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// fakeRemoteWrite records the series of Prometheus remote-write v1 requests
// and their Authorization headers; a body it cannot decode fails t.
type fakeRemoteWrite struct {
	t      testing.TB
	mu     sync.Mutex
	series []prompb.TimeSeries
	auth   []string
}

func (f *fakeRemoteWrite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err == nil {
		body, err = snappy.Decode(nil, body)
	}
	var req prompb.WriteRequest
	if err == nil {
		err = req.Unmarshal(body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.t.Errorf("remote-write stand-in: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.series = append(f.series, req.Timeseries...)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeRemoteWrite) snapshot() ([]prompb.TimeSeries, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.series), slices.Clone(f.auth)
}

// The shipped amp.yaml writes webapi's active requests, split by method, as
// one series per pod: http_server_active_requests{job, instance} and no other
// label, signed with SigV4 for aps — what the amp trigger's
// sum(http_server_active_requests{job="webapi"}) reads — and nothing else
// webapi exports (its request-duration histogram is dropped: AMP bills
// every sample).
func TestAMPConfigWritesOneSeriesPerPod(t *testing.T) {
	rw := &fakeRemoteWrite{t: t}
	srv := httptest.NewServer(rw)
	t.Cleanup(srv.Close)

	c := startCollector(t, filepath.Join(configsDir, "amp.yaml"), "", map[string]string{"AMP_REMOTE_WRITE_URL": srv.URL + "/workspaces/ws-test/api/v1/remote_write"})

	ctx := t.Context()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(c.OTLPHTTP), otlpmetrichttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	reader := sdkmetric.NewManualReader()
	// service.namespace is set on purpose: the config removes it so that job
	// stays "webapi" rather than "shop/webapi".
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(resource.NewSchemaless(
		attribute.String("service.name", "webapi"),
		attribute.String("service.namespace", "shop"),
		attribute.String("service.instance.id", "webapi-7d9f-abcde"))))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	active, err := mp.Meter("github.com/keda-eks-samples/workloads/pkg/telemetry").
		Int64UpDownCounter(activeRequests, metric.WithUnit("{request}"))
	if err != nil {
		t.Fatal(err)
	}
	duration, err := mp.Meter("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp").
		Float64Histogram("http.server.request.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	duration.Record(ctx, 0.25, metric.WithAttributes(attribute.String("http.request.method", "GET"), attribute.Int("http.response.status_code", 200)))
	duration.Record(ctx, 1.5, metric.WithAttributes(attribute.String("http.request.method", "GET"), attribute.Int("http.response.status_code", 200)))
	duration.Record(ctx, 0.5, metric.WithAttributes(attribute.String("http.request.method", "GET"), attribute.Int("http.response.status_code", 404)))
	active.Add(ctx, 3, metric.WithAttributes(attribute.String("http.request.method", "GET"), attribute.String("url.scheme", "http")))
	active.Add(ctx, 1, metric.WithAttributes(attribute.String("http.request.method", "POST"), attribute.String("url.scheme", "http")))
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	if err := exp.Export(ctx, &rm); err != nil {
		t.Fatal(err)
	}

	var series []prompb.TimeSeries
	var auth []string
	err = localproc.Poll(30*time.Second, func() (bool, error) {
		series, auth = rw.snapshot()
		return len(series) > 1 || t.Failed(), nil
	})
	if t.Failed() {
		t.FailNow() // the stand-in said why
	}
	if err != nil {
		t.Fatalf("no remote write: %v", err)
	}

	if len(series) != 2 {
		t.Fatalf("%d series, want 2: %v", len(series), series)
	}
	for _, sr := range series {
		got := map[string]string{}
		for _, l := range sr.Labels {
			got[l.Name] = l.Value
		}
		name := got["__name__"]
		want := map[string]string{"__name__": name, "job": "webapi", "instance": "webapi-7d9f-abcde"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("labels %v, want exactly %v", got, want)
		}
		var value float64
		switch name {
		case activeRequestsSeries:
			value = 4 // GET 3 + POST 1
		case busySecondsSeries:
			value = 2.25 // 0.25 + 1.5 + 0.5 s of answers, whatever their route and status
		default:
			t.Errorf("series %s: the trigger reads neither", name)
			continue
		}
		if len(sr.Samples) != 1 || sr.Samples[0].Value != value {
			t.Errorf("%s: samples %v, want one sample of %g", name, sr.Samples, value)
		}
	}
	for _, a := range auth {
		if !strings.HasPrefix(a, "AWS4-HMAC-SHA256 ") || !strings.Contains(a, "/eu-west-1/aps/aws4_request") {
			t.Errorf("remote write not SigV4-signed for aps in eu-west-1: %q", a)
		}
	}
}
