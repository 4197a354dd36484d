package telemetry

import (
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// Metric names the KEDA triggers in deploy/ read. Spelled once, here.
const (
	// ActiveRequests is read by the aws-cloudwatch trigger of the sidecar and
	// gateway overlays (SELECT AVG("http.server.active_requests") FROM ...)
	// and by the prometheus trigger of the amp overlay.
	ActiveRequests = "http.server.active_requests"
	// RequestDuration is otelhttp's histogram; its count is the request
	// total, which the cloudwatch exporter turns into RequestPerSecond.
	RequestDuration = "http.server.request.duration"
)

const instrumentationName = "github.com/keda-eks-samples/workloads/pkg/telemetry"

// InstrumentHTTP wraps h with otelhttp (request duration, body sizes) and
// records http.server.active_requests, which otelhttp does not emit: +1 when
// a request starts, -1 when its handler returns, with the semconv-required
// attributes http.request.method and url.scheme.
func InstrumentHTTP(mp metric.MeterProvider, operation string, h http.Handler) (http.Handler, error) {
	active, err := httpconv.NewServerActiveRequests(mp.Meter(instrumentationName))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", ActiveRequests, err)
	}
	// The attribute sets are built once, not per request: this middleware
	// sits on the hot path of every request (see BenchmarkForecastHandler).
	sets := map[string][2]attribute.Set{}
	for _, m := range []string{
		http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead,
		http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace,
	} {
		sets[m] = [2]attribute.Set{activeSet(m, "http"), activeSet(m, "https")}
	}
	other := [2]attribute.Set{activeSet(string(httpconv.RequestMethodOther), "http"), activeSet(string(httpconv.RequestMethodOther), "https")}
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		pair, ok := sets[r.Method]
		if !ok {
			pair = other // unknown methods: bounded cardinality
		}
		set := pair[0]
		if r.TLS != nil {
			set = pair[1]
		}
		active.AddSet(ctx, 1, set)
		defer active.AddSet(ctx, -1, set)
		h.ServeHTTP(w, r)
	})
	// Metrics only: no spans, no context propagation, so otelhttp skips that
	// work instead of feeding a no-op tracer.
	return otelhttp.NewHandler(counted, operation,
		otelhttp.WithMeterProvider(mp),
		otelhttp.WithTracerProvider(tracenoop.NewTracerProvider()),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
	), nil
}

// activeSet is the semconv-required attribute set of active_requests.
func activeSet(method, scheme string) attribute.Set {
	return attribute.NewSet(
		attribute.String("http.request.method", method),
		attribute.String("url.scheme", scheme),
	)
}
