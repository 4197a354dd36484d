// Package telemetry sets up OpenTelemetry metrics from the standard OTEL_*
// environment variables only; code never names an endpoint.
//
// OTEL_METRICS_EXPORTER picks the exporter through autoexport: otlp,
// prometheus, console, none, and cloudwatch (registered here, see
// cloudwatch.go). When neither OTEL_METRICS_EXPORTER nor an OTLP endpoint is
// set, metrics are recorded in process and exported nowhere.
//
// The SDK and autoexport read OTEL_* from the process environment themselves,
// not through a service's getenv; tests that set them use t.Setenv.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/exporters/autoexport"

	"github.com/keda-eks-samples/workloads/pkg/buildinfo"
	"github.com/keda-eks-samples/workloads/pkg/config"
	"github.com/keda-eks-samples/workloads/pkg/server"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Telemetry owns the meter provider of one run of a service.
type Telemetry struct {
	provider *sdkmetric.MeterProvider
	exporter string
	service  string // Setup's service, the operation InstrumentHTTP names

	stopped     atomic.Pointer[time.Time] // when Setup's context ended (SIGTERM)
	stopWatcher func() bool
}

// Setup builds the meter provider. service is the default service.name and
// buildinfo.Version the default service.version; OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES override them. extra carries
// the settings of exporters that need more than OTEL_* (CloudWatch).
func Setup(ctx context.Context, log *slog.Logger, service string, extra ...Option) (*Telemetry, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(buildinfo.Version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // after the defaults, so the environment wins
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	// Export failures surface through the SDK's global handler; route them
	// into the service's structured log rather than the stdlib logger.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("telemetry export failed", "err", err)
	}))

	opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	name := os.Getenv("OTEL_METRICS_EXPORTER")
	if name == "" && os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") == "" {
		name = "none" // nothing configured: keep metrics local (contract default)
	} else {
		for _, o := range extra {
			ctx = o(ctx)
		}
		reader, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			if config.IsConfig(err) { // e.g. the cloudwatch exporter's AWS_REGION
				return nil, err
			}
			// A bad OTEL_* value is a configuration error: exit 2, one line.
			return nil, &config.Error{Name: "OTEL_METRICS_EXPORTER", Value: name, Want: fmt.Sprintf(
				"otlp, prometheus, console, none or cloudwatch, with valid OTEL_EXPORTER_* settings (%v)", err)}
		}
		if name == "" {
			name = "otlp"
		}
		opts = append(opts, sdkmetric.WithReader(reader))
	}
	log.Info("metrics", "exporter", name)
	t := &Telemetry{provider: sdkmetric.NewMeterProvider(opts...), exporter: name, service: service}
	// The shutdown budget counts from the signal: remember when it came.
	t.stopWatcher = context.AfterFunc(ctx, func() {
		now := time.Now()
		t.stopped.Store(&now)
	})
	return t, nil
}

// Exporter is the exporter name in use ("none" when metrics stay local).
func (t *Telemetry) Exporter() string { return t.exporter }

// MeterProvider is handed to instrumentation explicitly (no global provider).
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.provider }

// FlushTimeout bounds the final export at exit when no signal started a
// shutdown budget (run is returning on its own).
const FlushTimeout = 5 * time.Second

// DrainBudget is the part of a shutdown budget (SHUTDOWN_TIMEOUT) a service
// may spend draining; the rest, min(FlushTimeout, budget/10), is kept for
// the final export, so that draining and the last flush together end within
// budget.
func DrainBudget(budget time.Duration) time.Duration { return budget - min(FlushTimeout, budget/10) }

// Server serves routes, instrumented (InstrumentHTTP) under Setup's service
// name, behind the probes and checks of server.New, draining within
// DrainBudget of cfg.ShutdownTimeout so that the last flush (ShutdownOnExit
// with the whole budget) still fits.
func (t *Telemetry) Server(cfg server.Config, log *slog.Logger, routes http.Handler, checks map[string]server.Check) (*server.Server, error) {
	app, err := InstrumentHTTP(t.provider, t.service, routes)
	if err != nil {
		return nil, err
	}
	cfg.ShutdownTimeout = DrainBudget(cfg.ShutdownTimeout)
	return server.New(cfg, log, app, checks), nil
}

// ShutdownOnExit is ShutdownWithin for a deferred call at the end of run,
// its error joined into *errp.
//
//	defer tel.ShutdownOnExit(ctx, cfg.Server.ShutdownTimeout, &err)
func (t *Telemetry) ShutdownOnExit(ctx context.Context, budget time.Duration, errp *error) {
	*errp = errors.Join(*errp, t.ShutdownWithin(ctx, budget))
}

// ShutdownWithin is Shutdown bounded by the shutdown budget: the flush ends
// budget after Setup's context ended (SIGTERM), whatever the drain before it
// used, so the process exits within SHUTDOWN_TIMEOUT; when that context has
// not ended (run returns on its own), it gets min(FlushTimeout, budget).
func (t *Telemetry) ShutdownWithin(ctx context.Context, budget time.Duration) error {
	t.stopWatcher()
	deadline := time.Now().Add(min(FlushTimeout, budget))
	if ctx.Err() != nil {
		deadline = time.Now().Add(budget) // the signal came a moment ago
		if at := t.stopped.Load(); at != nil {
			deadline = at.Add(budget)
		}
	}
	fctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	return t.Shutdown(fctx)
}

// Shutdown flushes pending metrics (one last export) and stops the readers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry shutdown: %w", err)
	}
	return nil
}
