package telemetry

import (
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Metric names the KEDA triggers in deploy/ read. Spelled once, here.
const (
	// ActiveRequests is read by the aws-cloudwatch trigger of the sidecar and
	// gateway overlays (SELECT SUM("http.server.active_requests") FROM ...)
	// and by the prometheus trigger of the amp overlay.
	ActiveRequests = "http.server.active_requests"
	// RequestDuration is otelhttp's histogram; its count is the request
	// total, which the cloudwatch exporter turns into RequestPerSecond.
	RequestDuration = "http.server.request.duration"
)

const instrumentationName = "github.com/keda-eks-samples/workloads/pkg/telemetry"

// InstrumentHTTP wraps h with otelhttp (request duration) and records
// http.server.active_requests, which otelhttp does not emit: +1 when a
// request starts, -1 when its handler returns, with the semconv-required
// attributes http.request.method and url.scheme.
func InstrumentHTTP(mp metric.MeterProvider, operation string, h http.Handler) (http.Handler, error) {
	active, err := httpconv.NewServerActiveRequests(mp.Meter(instrumentationName))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", ActiveRequests, err)
	}
	// The attribute options are built once, not per request: this middleware
	// sits on the hot path of every request (see BenchmarkForecastOverHTTP).
	counter := active.Inst()
	opts := map[string][2][]metric.AddOption{}
	for _, m := range []string{
		http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead,
		http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace,
	} {
		opts[m] = activeOpts(m)
	}
	other := activeOpts(string(httpconv.RequestMethodOther)) // unknown methods: bounded cardinality
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		pair, ok := opts[r.Method]
		if !ok {
			pair = other
		}
		o := pair[0]
		if r.TLS != nil {
			o = pair[1]
		}
		counter.Add(ctx, 1, o...)
		defer counter.Add(ctx, -1, o...)
		h.ServeHTTP(w, r)
	})
	// Metrics only: a no-op tracer and no propagators. otelhttp still builds
	// each request's span attributes and wraps the ResponseWriter (no option
	// turns that off); that, its attribute set per request and the duration
	// histogram are most of its cost (see BenchmarkForecastOverHTTP).
	return otelhttp.NewHandler(counted, operation,
		otelhttp.WithMeterProvider(withoutBodySizes{mp}),
		otelhttp.WithTracerProvider(tracenoop.NewTracerProvider()),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
	), nil
}

// activeOpts are the options that record active_requests with its
// semconv-required attributes, for url.scheme http and https.
func activeOpts(method string) [2][]metric.AddOption {
	var out [2][]metric.AddOption
	for i, scheme := range []string{"http", "https"} {
		out[i] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
			attribute.String("http.request.method", method),
			attribute.String("url.scheme", scheme),
		))}
	}
	return out
}

// withoutBodySizes is the meter provider otelhttp gets: the same provider,
// except that the request and response body-size histograms are no-ops. No
// trigger reads them, and they are two of the three histograms otelhttp
// would update on every request.
type withoutBodySizes struct{ metric.MeterProvider }

func (p withoutBodySizes) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return meterWithoutBodySizes{p.MeterProvider.Meter(name, opts...)}
}

type meterWithoutBodySizes struct{ metric.Meter }

func (m meterWithoutBodySizes) Int64Histogram(name string, opts ...metric.Int64HistogramOption) (metric.Int64Histogram, error) {
	switch name {
	case httpconv.ServerRequestBodySize{}.Name(), httpconv.ServerResponseBodySize{}.Name():
		return metricnoop.Int64Histogram{}, nil
	}
	return m.Meter.Int64Histogram(name, opts...)
}
