package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/keda-eks-samples/workloads/pkg/telemetry"
	"github.com/keda-eks-samples/workloads/services/webapi/internal/weather"
)

type namedHandler struct {
	name string
	h    http.Handler
}

// forecastHandlers returns the zero-delay /weatherforecast handler bare and
// behind the instrumentation webapi serves it with (otelhttp +
// http.server.active_requests, recorded into a real SDK meter provider).
func forecastHandlers(b *testing.B) []namedHandler {
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bare := weather.Handler(log, 0, 0)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	instrumented, err := telemetry.InstrumentHTTP(mp, serviceName, bare)
	if err != nil {
		b.Fatal(err)
	}
	return []namedHandler{{"bare", bare}, {"instrumented", instrumented}}
}

// BenchmarkForecastHandler compares the two forecastHandlers in process.
// `make bench` prints the instrumented/bare ratio.
func BenchmarkForecastHandler(b *testing.B) {
	for _, bc := range forecastHandlers(b) {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/weatherforecast", nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				bc.h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}

// BenchmarkForecastOverHTTP is the same comparison through a real loopback
// HTTP round trip (server, client, connection reuse), the cost a caller
// actually sees; `make bench` prints it next to the handler-only ratio.
func BenchmarkForecastOverHTTP(b *testing.B) {
	for _, bc := range forecastHandlers(b) {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(bc.h)
			defer srv.Close()
			client := srv.Client()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Get(srv.URL + "/weatherforecast")
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
