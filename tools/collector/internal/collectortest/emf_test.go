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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keda-eks-samples/workloads/pkg/localproc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
)

// The two metrics cloudwatch.yaml writes, as the trigger and dashboards name them.
const (
	activeRequests = "http.server.active_requests"
	busySeconds    = "http.server.request.duration_sum"
)

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
// PutLogEvents events are kept, CreateLogGroup / CreateLogStream succeed; a
// bad call fails t (httptest's Close waits for handlers, so never late).
type fakeLogs struct {
	t        testing.TB
	rejected atomic.Bool // a call failed t: waitForEvents stops
	mu       sync.Mutex
	events   []logEvent
}

func (f *fakeLogs) reject(format string, args ...any) {
	f.rejected.Store(true)
	f.t.Errorf("CloudWatch Logs stand-in: "+format, args...)
}

func (f *fakeLogs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			f.reject("gzip: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/logs/aws4_request") {
		f.reject("%s not SigV4-signed for logs: %q", target, auth)
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
			f.reject("PutLogEvents body: %v", err)
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
		f.reject("unexpected call %q", target)
		http.Error(w, "unexpected", http.StatusBadRequest)
	}
}

func (f *fakeLogs) snapshot() []logEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

// emfRecord is the part of an EMF record (version 1) the trigger depends on.
type emfRecord struct {
	fields       map[string]any
	measurements []struct {
		Namespace  string
		Dimensions [][]string
		Metrics    []emfMetric
	}
}

// emfMetric is one entry of a CloudWatchMetrics directive's Metrics.
type emfMetric struct{ Name, Unit string }

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

// The shipped cloudwatch.yaml turns webapi's duration histogram, exported as
// deltas (the sidecar and gateway overlays set the SDK's delta preference),
// into one busy-seconds value per export (the sum of that export's answer
// durations, in Seconds), and its active-requests UpDownCounter, split by
// method, into one level per export, both under exactly the dimension set
// the aws-cloudwatch trigger reads, and sends nothing else.
func TestCloudWatchConfigWritesBusySecondsAndOneGauge(t *testing.T) {
	logs := &fakeLogs{t: t}
	srv := httptest.NewServer(logs)
	t.Cleanup(srv.Close)

	// Test-only override: endpoints to loopback, nothing else.
	c := startCollector(t, filepath.Join(configsDir, "cloudwatch.yaml"), fmt.Sprintf(`
exporters:
  awsemf:
    endpoint: %s
`, srv.URL), nil)

	// webapi's side, as pkg/telemetry and otelhttp record it: an
	// Int64UpDownCounter with http.request.method and url.scheme and a
	// duration histogram, over OTLP/HTTP with the delta preference
	// (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta: the
	// UpDownCounter stays cumulative).
	ctx := t.Context()
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpoint(c.OTLPHTTP), otlpmetrichttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	reader := sdkmetric.NewManualReader(sdkmetric.WithTemporalitySelector(sdkmetric.DeltaTemporalitySelector))
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

	// In flight after each step (what awsemf would have sent without the
	// Sum->Gauge fix, first point dropped, then deltas: -, -3, +5), and the
	// busy seconds answered in it (none: no field).
	steps := []struct {
		do         func()
		want, busy float64
	}{
		{func() { active.Add(ctx, 3, get); active.Add(ctx, 1, post); duration.Record(ctx, 0.25, get) }, 4, 0.25},
		{func() {
			active.Add(ctx, -2, get)
			active.Add(ctx, -1, post) // POST back to 0
			duration.Record(ctx, 1.5, get)
			duration.Record(ctx, 0.5, get)
			duration.Record(ctx, 0.125, post)
		}, 1, 2.125},
		{func() { active.Add(ctx, 5, get) }, 6, 0},
	}
	ns := "MyApiNamespace"
	// awsemf writes one record per metric type (the level is a Gauge, busy
	// seconds a Sum), both with the export's timestamp.
	seen, records := 0, 0
	for i, step := range steps {
		step.do()
		export()
		want := map[string]emfMetric{activeRequests: {Name: activeRequests, Unit: "Count"}}
		if step.busy > 0 {
			want[busySeconds] = emfMetric{Name: busySeconds, Unit: "Seconds"}
		}
		records += len(want)
		events := waitForEvents(t, logs, records)
		for _, ev := range events[seen:] {
			if ev.Group != "/metrics/"+ns {
				t.Errorf("log group %q, want /metrics/%s", ev.Group, ns)
			}
			rec := parseEMF(t, ev.Message)
			if len(rec.measurements) != 1 || len(rec.measurements[0].Metrics) != 1 {
				t.Fatalf("export %d: want one CloudWatchMetrics entry with one metric\n%s", i+1, ev.Message)
			}
			m := rec.measurements[0]
			if m.Namespace != ns {
				t.Errorf("namespace %q, want %q", m.Namespace, ns)
			}
			if want := [][]string{{"Service"}}; !reflect.DeepEqual(m.Dimensions, want) {
				t.Errorf("dimensions %v, want exactly %v", m.Dimensions, want)
			}
			name := m.Metrics[0].Name
			if m.Metrics[0] != want[name] {
				t.Errorf("export %d: metric %+v, want one of %v", i+1, m.Metrics[0], want)
			}
			delete(want, name)
			switch got := rec.fields[name]; name {
			case activeRequests:
				if got != step.want {
					t.Errorf("export %d: %s = %v, want the level %v\n%s", i+1, name, got, step.want, ev.Message)
				}
			case busySeconds:
				if got != step.busy {
					t.Errorf("export %d: %s = %v, want the %v s answered since the last export\n%s", i+1, name, got, step.busy, ev.Message)
				}
			}
			if rec.fields["Service"] != "webapi" {
				t.Errorf("Service = %v, want webapi", rec.fields["Service"])
			}
			for _, gone := range []string{"http.request.method", "url.scheme", "http.route", "http.response.status_code"} {
				if v, ok := rec.fields[gone]; ok {
					t.Errorf("record still carries %s=%v", gone, v)
				}
			}
		}
		if len(want) > 0 {
			t.Errorf("export %d: no record of %v", i+1, want)
		}
		seen = records
	}

	events := logs.snapshot()
	if len(events) != records {
		for _, e := range events {
			t.Log(e.Message)
		}
		t.Errorf("%d log events, want %d (one per export and metric, nothing but %s and %s)", len(events), records, activeRequests, busySeconds)
	}
}

// waitForEvents polls until at least n log events arrived (batch timeout is
// 5s in the shipped config).
func waitForEvents(t *testing.T, logs *fakeLogs, n int) []logEvent {
	t.Helper()
	var events []logEvent
	err := localproc.Poll(30*time.Second, func() (bool, error) {
		events = logs.snapshot()
		return len(events) >= n || logs.rejected.Load(), nil
	})
	if logs.rejected.Load() {
		t.FailNow() // the stand-in said why
	}
	if err != nil {
		t.Fatalf("%d log events, want %d: %v", len(events), n, err)
	}
	return events
}
