package cwexporter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// recorder is a fake PutMetricDataAPI that records every call.
type recorder struct {
	mu     sync.Mutex
	inputs []*cloudwatch.PutMetricDataInput
}

func (r *recorder) PutMetricData(_ context.Context, in *cloudwatch.PutMetricDataInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inputs = append(r.inputs, in)
	return &cloudwatch.PutMetricDataOutput{}, nil
}

func (r *recorder) calls() []*cloudwatch.PutMetricDataInput {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*cloudwatch.PutMetricDataInput(nil), r.inputs...)
}

// Fixed instants used to build data; nothing compares them to the wall clock.
var (
	t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t5 = t0.Add(5 * time.Second)
	tA = t0.Add(10 * time.Second)
)

func rmOf(metrics ...metricdata.Metrics) *metricdata.ResourceMetrics {
	return &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{{
		Scope:   instrumentation.Scope{Name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"},
		Metrics: metrics,
	}}}
}

func hist(name string, pts ...metricdata.HistogramDataPoint[float64]) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Data: metricdata.Histogram[float64]{
		Temporality: metricdata.DeltaTemporality, DataPoints: pts,
	}}
}

func hp(count uint64, start, end time.Time) metricdata.HistogramDataPoint[float64] {
	return metricdata.HistogramDataPoint[float64]{Count: count, StartTime: start, Time: end}
}

func TestFindWindowAndRate(t *testing.T) {
	const src = DefaultSourceMetric
	tests := []struct {
		name       string
		rm         *metricdata.ResourceMetrics
		wantPoints int
		wantOK     bool
		wantRate   float64
		wantEnd    time.Time
		wantErr    string
	}{
		{
			name: "25 requests in 10s", rm: rmOf(hist(src, hp(25, t0, tA))),
			wantPoints: 1, wantOK: true, wantRate: 2.5, wantEnd: tA,
		},
		{
			name: "all attribute sets and scopes are summed",
			rm: &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{
				{Metrics: []metricdata.Metrics{hist(src, hp(10, t0, tA), hp(5, t0, tA))}},
				{Metrics: []metricdata.Metrics{hist(src, hp(5, t0, tA))}},
			}},
			wantPoints: 3, wantOK: true, wantRate: 2, wantEnd: tA,
		},
		{
			name:       "widest window is used",
			rm:         rmOf(hist(src, hp(10, t0, tA), hp(10, t5, tA))),
			wantPoints: 2, wantOK: true, wantRate: 2, wantEnd: tA,
		},
		{
			name:       "latest end time is the timestamp",
			rm:         rmOf(hist(src, hp(10, t0, t5), hp(10, t5, tA))),
			wantPoints: 2, wantOK: true, wantRate: 4, wantEnd: tA,
		},
		{
			name:       "zero requests in a present stream",
			rm:         rmOf(hist(src, hp(0, t0, tA))),
			wantPoints: 1, wantOK: true, wantRate: 0, wantEnd: tA,
		},
		{
			name: "int64 histogram",
			rm: rmOf(metricdata.Metrics{Name: src, Data: metricdata.Histogram[int64]{
				Temporality: metricdata.DeltaTemporality,
				DataPoints:  []metricdata.HistogramDataPoint[int64]{{Count: 5, StartTime: t0, Time: tA}},
			}}),
			wantPoints: 1, wantOK: true, wantRate: 0.5, wantEnd: tA,
		},
		{
			name: "exponential histogram",
			rm: rmOf(metricdata.Metrics{Name: src, Data: metricdata.ExponentialHistogram[float64]{
				Temporality: metricdata.DeltaTemporality,
				DataPoints:  []metricdata.ExponentialHistogramDataPoint[float64]{{Count: 40, StartTime: t0, Time: tA}},
			}}),
			wantPoints: 1, wantOK: true, wantRate: 4, wantEnd: tA,
		},
		{
			name: "int64 sum counter",
			rm: rmOf(metricdata.Metrics{Name: src, Data: metricdata.Sum[int64]{
				Temporality: metricdata.DeltaTemporality, IsMonotonic: true,
				DataPoints: []metricdata.DataPoint[int64]{{Value: 20, StartTime: t0, Time: tA}, {Value: 10, StartTime: t0, Time: tA}},
			}}),
			wantPoints: 2, wantOK: true, wantRate: 3, wantEnd: tA,
		},
		{
			name: "float64 sum counter",
			rm: rmOf(metricdata.Metrics{Name: src, Data: metricdata.Sum[float64]{
				Temporality: metricdata.DeltaTemporality, IsMonotonic: true,
				DataPoints: []metricdata.DataPoint[float64]{{Value: 2.5, StartTime: t5, Time: tA}},
			}}),
			wantPoints: 1, wantOK: true, wantRate: 0.5, wantEnd: tA,
		},
		{
			name:       "other metrics are ignored",
			rm:         rmOf(hist("http.client.request.duration", hp(1000, t0, tA)), hist(src, hp(25, t0, tA))),
			wantPoints: 1, wantOK: true, wantRate: 2.5, wantEnd: tA,
		},
		{name: "nil resource metrics", rm: nil},
		{name: "source absent", rm: rmOf(hist("other", hp(3, t0, tA)))},
		{name: "source without data points", rm: rmOf(hist(src))},
		{name: "zero-length window", rm: rmOf(hist(src, hp(3, tA, tA))), wantPoints: 1, wantEnd: tA},
		{name: "missing start time", rm: rmOf(hist(src, hp(3, time.Time{}, tA))), wantPoints: 1, wantEnd: tA},
		{
			name: "cumulative data is rejected",
			rm: rmOf(metricdata.Metrics{Name: src, Data: metricdata.Histogram[float64]{
				Temporality: metricdata.CumulativeTemporality,
				DataPoints:  []metricdata.HistogramDataPoint[float64]{hp(1, t0, tA)},
			}}),
			wantErr: "cumulative temporality",
		},
		{
			name: "gauge is rejected",
			rm: rmOf(metricdata.Metrics{Name: src, Data: metricdata.Gauge[float64]{
				DataPoints: []metricdata.DataPoint[float64]{{Value: 1, Time: tA}},
			}}),
			wantErr: "unsupported data type",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := findWindow(tt.rm, src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if w.points != tt.wantPoints {
				t.Errorf("points = %d, want %d", w.points, tt.wantPoints)
			}
			if !w.end.Equal(tt.wantEnd) {
				t.Errorf("end = %v, want %v", w.end, tt.wantEnd)
			}
			rate, ok := w.rate()
			if ok != tt.wantOK {
				t.Fatalf("rate ok = %v, want %v", ok, tt.wantOK)
			}
			if math.Abs(rate-tt.wantRate) > 1e-9 {
				t.Errorf("rate = %v, want %v", rate, tt.wantRate)
			}
		})
	}
}

func TestNew(t *testing.T) {
	rec := &recorder{}
	e, err := New(Config{Client: rec})
	if err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
	if e.namespace != DefaultNamespace || e.metricName != DefaultMetricName || e.host != DefaultHost || e.sourceMetric != DefaultSourceMetric {
		t.Fatalf("defaults not applied: %+v", e)
	}

	tests := []struct {
		name    string
		cfg     Config
		wantErr string // empty: valid
	}{
		{name: "no client", cfg: Config{}, wantErr: "Client is required"},
		{name: "custom values", cfg: Config{Client: rec, Namespace: "Other", MetricName: "Rps", Host: "api-7d9f-xk2", SourceMetric: "requests"}},
		{name: "blank namespace", cfg: Config{Client: rec, Namespace: "  "}, wantErr: "namespace must contain"},
		{name: "namespace at limit", cfg: Config{Client: rec, Namespace: strings.Repeat("n", 255)}},
		{name: "namespace too long", cfg: Config{Client: rec, Namespace: strings.Repeat("n", 256)}, wantErr: "namespace is 256 characters"},
		{name: "namespace reserved prefix", cfg: Config{Client: rec, Namespace: "AWS/EC2"}, wantErr: "reserved"},
		{name: "namespace leading colon", cfg: Config{Client: rec, Namespace: ":x"}, wantErr: "must not start with ':'"},
		{name: "namespace control char", cfg: Config{Client: rec, Namespace: "a\tb"}, wantErr: "printable ASCII"},
		{name: "blank metric name", cfg: Config{Client: rec, MetricName: " "}, wantErr: "metric name must contain"},
		{name: "metric name at limit", cfg: Config{Client: rec, MetricName: strings.Repeat("m", 255)}},
		{name: "metric name too long", cfg: Config{Client: rec, MetricName: strings.Repeat("m", 256)}, wantErr: "metric name is 256 characters"},
		{name: "blank host", cfg: Config{Client: rec, Host: "\t"}, wantErr: "host (Host dimension value) must contain"},
		{name: "host at limit", cfg: Config{Client: rec, Host: strings.Repeat("h", 1024)}},
		{name: "host too long", cfg: Config{Client: rec, Host: strings.Repeat("h", 1025)}, wantErr: "is 1025 characters"},
		{name: "host not ASCII", cfg: Config{Client: rec, Host: "pöd"}, wantErr: "printable ASCII"},
		{name: "blank source metric", cfg: Config{Client: rec, SourceMetric: " "}, wantErr: "source metric"},
		{
			name:    "all problems reported at once",
			cfg:     Config{Client: rec, Namespace: "AWS/x", MetricName: " ", Host: " "},
			wantErr: "metric name must contain",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func newTestExporter(t *testing.T, client PutMetricDataAPI) *Exporter {
	t.Helper()
	e, err := New(Config{Client: client, Host: "pod-1"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestExportAbsentSourcePublishesZero(t *testing.T) {
	for name, rm := range map[string]*metricdata.ResourceMetrics{
		"nil":            nil,
		"empty":          {},
		"other metrics":  rmOf(hist("runtime.go.goroutines", hp(3, t0, tA))),
		"no data points": rmOf(hist(DefaultSourceMetric)),
	} {
		t.Run(name, func(t *testing.T) {
			rec := &recorder{}
			e := newTestExporter(t, rec)
			e.now = func() time.Time { return t5 }
			if err := e.Export(t.Context(), rm); err != nil {
				t.Fatal(err)
			}
			calls := rec.calls()
			if len(calls) != 1 || len(calls[0].MetricData) != 1 {
				t.Fatalf("want one call with one datum, got %s", dump(calls...))
			}
			d := calls[0].MetricData[0]
			if *d.Value != 0 || !d.Timestamp.Equal(t5) {
				t.Fatalf("datum = %s, want Value 0 at %v", dump(calls...), t5)
			}
		})
	}
}

func TestExportSkipsWithoutWindow(t *testing.T) {
	rec := &recorder{}
	e := newTestExporter(t, rec)
	if err := e.Export(t.Context(), rmOf(hist(DefaultSourceMetric, hp(7, tA, tA)))); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.calls()); n != 0 {
		t.Fatalf("got %d calls for a zero-length window, want 0", n)
	}
}

func TestExportErrors(t *testing.T) {
	valid := rmOf(hist(DefaultSourceMetric, hp(25, t0, tA)))

	t.Run("after shutdown", func(t *testing.T) {
		rec := &recorder{}
		e := newTestExporter(t, rec)
		if err := e.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := e.Shutdown(t.Context()); err != nil {
			t.Fatalf("second Shutdown: %v", err)
		}
		if err := e.Export(t.Context(), valid); !errors.Is(err, sdkmetric.ErrExporterShutdown) {
			t.Fatalf("err = %v, want ErrExporterShutdown", err)
		}
		if n := len(rec.calls()); n != 0 {
			t.Fatalf("got %d calls after shutdown", n)
		}
	})
	t.Run("context already done", func(t *testing.T) {
		rec := &recorder{}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := newTestExporter(t, rec).Export(ctx, valid); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n := len(rec.calls()); n != 0 {
			t.Fatalf("got %d calls with a canceled context", n)
		}
	})
	t.Run("bad source data", func(t *testing.T) {
		rec := &recorder{}
		rm := rmOf(metricdata.Metrics{Name: DefaultSourceMetric, Data: metricdata.Sum[int64]{
			Temporality: metricdata.CumulativeTemporality,
			DataPoints:  []metricdata.DataPoint[int64]{{Value: 1, StartTime: t0, Time: tA}},
		}})
		if err := newTestExporter(t, rec).Export(t.Context(), rm); err == nil {
			t.Fatal("want an error for cumulative data")
		}
		if n := len(rec.calls()); n != 0 {
			t.Fatalf("got %d calls for bad data", n)
		}
	})
}

func TestForceFlush(t *testing.T) {
	e := newTestExporter(t, &recorder{})
	if err := e.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.ForceFlush(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func dump(ins ...*cloudwatch.PutMetricDataInput) string {
	var b strings.Builder
	for _, in := range ins {
		fmt.Fprintf(&b, "ns=%s\n", aws.ToString(in.Namespace))
		for _, d := range in.MetricData {
			fmt.Fprintf(&b, "  name=%s unit=%s value=%v ts=%v dims=", aws.ToString(d.MetricName), d.Unit, aws.ToFloat64(d.Value), aws.ToTime(d.Timestamp))
			for _, dim := range d.Dimensions {
				fmt.Fprintf(&b, "%s=%s ", aws.ToString(dim.Name), aws.ToString(dim.Value))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}
