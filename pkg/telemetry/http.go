package telemetry

import (
	"fmt"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
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
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		method, scheme := requestMethod(r.Method), "http"
		if r.TLS != nil {
			scheme = "https"
		}
		active.Add(ctx, 1, method, scheme)
		defer active.Add(ctx, -1, method, scheme)
		h.ServeHTTP(w, r)
	})
	return otelhttp.NewHandler(counted, operation, otelhttp.WithMeterProvider(mp)), nil
}

// requestMethod maps a method to its semconv value; unknown methods become
// _OTHER so a client cannot blow up the attribute cardinality.
func requestMethod(m string) httpconv.RequestMethodAttr {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead,
		http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return httpconv.RequestMethodAttr(m)
	default:
		return httpconv.RequestMethodOther
	}
}
