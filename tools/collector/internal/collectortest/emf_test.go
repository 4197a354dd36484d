package collectortest

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

const activeRequests = "http.server.active_requests"

// The two series amp.yaml writes, as the trigger and dashboards name them.
const (
	activeRequestsSeries = "http_server_active_requests"
	busySecondsSeries    = "http_server_request_duration_sum_seconds_total"
)

// logEvent is one CloudWatch Logs event that awsemf sent.
type logEvent struct {
	Group, Stream, Message string
}

// fakeLogs records what awsemf sends to CloudWatch Logs (AWS JSON 1.1):
// PutLogEvents events are kept, CreateLogGroup / CreateLogStream succeed.
type fakeLogs struct {
	mu     sync.Mutex
	events []logEvent
	errs   []string
}

func (f *fakeLogs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			f.fail("gzip: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/logs/aws4_request") {
		f.fail("%s not SigV4-signed for logs: %q", target, auth)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch target {
	case "Logs_20140328.PutLogEvents":
		var req struct {
			LogGroupName  string `json:"logGroupName"`
			LogStreamName string `json:"logStreamName"`
			LogEvents     []struct {
				Timestamp int64  `json:"timestamp"`
				Message   string `json:"message"`
			} `json:"logEvents"`
		}
		if err := json.NewDecoder(body).Decode(&req); err != nil {
			f.fail("PutLogEvents body: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		for _, e := range req.LogEvents {
			f.events = append(f.events, logEvent{req.LogGroupName, req.LogStreamName, e.Message})
		}
		f.mu.Unlock()
		_, _ = io.WriteString(w, `{"nextSequenceToken":"1"}`)
	case "Logs_20140328.CreateLogGroup", "Logs_20140328.CreateLogStream":
		_, _ = io.WriteString(w, `{}`)
	default:
		f.fail("unexpected call %q", target)
		http.Error(w, "unexpected", http.StatusBadRequest)
	}
}

func (f *fakeLogs) fail(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeLogs) snapshot() ([]logEvent, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]logEvent(nil), f.events...), append([]string(nil), f.errs...)
}

// emfRecord is the part of an EMF record (version 1) the trigger depends on.
type emfRecord struct {
	fields       map[string]any
	measurements []struct {
		Namespace  string
		Dimensions [][]string
		Metrics    []struct{ Name, Unit string }
	}
}

func parseEMF(t *testing.T, msg string) emfRecord {
	t.Helper()
	var rec emfRecord
	if err := json.Unmarshal([]byte(msg), &rec.fields); err != nil {
		t.Fatalf("EMF record is not JSON: %v\n%s", err, msg)
	}
	var meta struct {
		AWS struct {
			CloudWatchMetrics json.RawMessage
		} `json:"_aws"`
	}
	if err := json.Unmarshal([]byte(msg), &meta); err != nil || meta.AWS.CloudWatchMetrics == nil {
		t.Fatalf("EMF record without _aws.CloudWatchMetrics: %v\n%s", err, msg)
	}
	if err := json.Unmarshal(meta.AWS.CloudWatchMetrics, &rec.measurements); err != nil {
		t.Fatalf("_aws.CloudWatchMetrics: %v\n%s", err, msg)
	}
	return rec
}

// The shipped cloudwatch.yaml turns webapi's active-requests UpDownCounter,
// split by method, into one EMF level per export under exactly the dimension
// set the aws-cloudwatch trigger reads, and sends nothing else.
func TestCloudWatchConfigTurnsActiveRequestsIntoOneGauge(t *testing.T) {
	logs := &fakeLogs{}
	srv := httptest.NewServer(logs)
	t.Cleanup(srv.Close)

	// Test-only override: endpoints to loopback, nothing else.
	c := startCollector(t, filepath.Join(configsDir, "cloudwatch.yaml"), fmt.Sprintf(`
exporters:
  awsemf:
    endpoint: %s
`, srv.URL), nil)

	// webapi's side, as pkg/telemetry records it: an Int64UpDownCounter with
	// http.request.method and url.scheme, cumulative, over OTLP/HTTP.
	ctx := t.Context()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(c.OTLPHTTP), otlpmetrichttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader),
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "webapi"))))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	meter := mp.Meter("github.com/keda-eks-samples/workloads/pkg/telemetry")
	active, err := meter.Int64UpDownCounter(activeRequests, metric.WithUnit("{request}"))
	if err != nil {
		t.Fatal(err)
	}
	duration, err := meter.Float64Histogram("http.server.request.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	get := metric.WithAttributeSet(attribute.NewSet(attribute.String("http.request.method", "GET"), attribute.String("url.scheme", "http")))
	post := metric.WithAttributeSet(attribute.NewSet(attribute.String("http.request.method", "POST"), attribute.String("url.scheme", "http")))
	export := func() {
		t.Helper()
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatal(err)
		}
		if err := exp.Export(ctx, &rm); err != nil {
			t.Fatal(err)
		}
	}

	// In flight after each step, and what awsemf would have sent without the
	// Sum->Gauge fix (first point dropped, then deltas): -, -3, +5.
	steps := []struct {
		do   func()
		want float64
	}{
		{func() { active.Add(ctx, 3, get); active.Add(ctx, 1, post); duration.Record(ctx, 0.2, get) }, 4},
		{func() { active.Add(ctx, -2, get); active.Add(ctx, -1, post) }, 1}, // POST back to 0
		{func() { active.Add(ctx, 5, get) }, 6},
	}
	ns := "MyApiNamespace"
	for i, step := range steps {
		step.do()
		export()
		events := waitForEvents(t, logs, i+1)
		ev := events[i]
		if ev.Group != "/metrics/"+ns {
			t.Errorf("log group %q, want /metrics/%s", ev.Group, ns)
		}
		rec := parseEMF(t, ev.Message)
		if got := rec.fields[activeRequests]; got != step.want {
			t.Errorf("export %d: %s = %v, want the level %v\n%s", i+1, activeRequests, got, step.want, ev.Message)
		}
		if len(rec.measurements) != 1 {
			t.Fatalf("export %d: %d CloudWatchMetrics entries, want 1\n%s", i+1, len(rec.measurements), ev.Message)
		}
		m := rec.measurements[0]
		if m.Namespace != ns {
			t.Errorf("namespace %q, want %q", m.Namespace, ns)
		}
		if want := [][]string{{"Service"}}; !reflect.DeepEqual(m.Dimensions, want) {
			t.Errorf("dimensions %v, want exactly %v", m.Dimensions, want)
		}
		if len(m.Metrics) != 1 || m.Metrics[0].Name != activeRequests || m.Metrics[0].Unit != "Count" {
			t.Errorf("metrics %+v, want one %s in Count", m.Metrics, activeRequests)
		}
		if rec.fields["Service"] != "webapi" {
			t.Errorf("Service = %v, want webapi", rec.fields["Service"])
		}
		for _, gone := range []string{"http.request.method", "url.scheme"} {
			if v, ok := rec.fields[gone]; ok {
				t.Errorf("record still carries %s=%v", gone, v)
			}
		}
	}

	events, errs := logs.snapshot()
	for _, e := range errs {
		t.Error(e)
	}
	if len(events) != len(steps) {
		for _, e := range events {
			t.Log(e.Message)
		}
		t.Errorf("%d log events, want %d (one per export, nothing but %s)", len(events), len(steps), activeRequests)
	}
}

// waitForEvents polls until at least n log events arrived (batch timeout is
// 5s in the shipped config).
func waitForEvents(t *testing.T, logs *fakeLogs, n int) []logEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		events, errs := logs.snapshot()
		if len(errs) > 0 {
			t.Fatalf("CloudWatch Logs stand-in: %v", errs)
		}
		if len(events) >= n {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d log events after 30s, want %d", len(events), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
