package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// ExporterName is the OTEL_METRICS_EXPORTER value for the CloudWatch-direct
// variant (KEDA aws-cloudwatch trigger on RequestPerSecond).
const ExporterName = "cloudwatch"

// Option adds exporter settings to the context autoexport hands its factories.
type Option func(context.Context) context.Context

type cloudWatchKey struct{}

// CloudWatch supplies the exporter used when OTEL_METRICS_EXPORTER=cloudwatch.
// build runs only when that exporter is selected, so services that never use
// it do not load AWS configuration.
func CloudWatch(build func(context.Context) (sdkmetric.Exporter, error)) Option {
	return func(ctx context.Context) context.Context {
		return context.WithValue(ctx, cloudWatchKey{}, build)
	}
}

// autoexport keeps its exporter registry in a package variable and panics on
// a second registration of a name, so the name is registered exactly once,
// here. Per-run settings travel in the context, not in this registration.
func init() {
	autoexport.RegisterMetricReader(ExporterName, func(ctx context.Context) (sdkmetric.Reader, error) {
		build, ok := ctx.Value(cloudWatchKey{}).(func(context.Context) (sdkmetric.Exporter, error))
		if !ok {
			return nil, errors.New("this service does not publish to CloudWatch directly")
		}
		exp, err := build(ctx)
		if err != nil {
			return nil, err
		}
		// The periodic reader takes OTEL_METRIC_EXPORT_INTERVAL / _TIMEOUT
		// from the environment: one export, so one PutMetricData, per interval.
		return sdkmetric.NewPeriodicReader(exp), nil
	})
}
