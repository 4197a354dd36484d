// Package cwexporter is an OpenTelemetry metric exporter that publishes one
// request-rate metric to Amazon CloudWatch with PutMetricData.
//
// It exists for the "CloudWatch-direct" variant of the KEDA autoscaling
// sample: KEDA's aws-cloudwatch trigger (deploy/kustomize/components/
// trigger-cloudwatch-direct) runs
//
//	SELECT SUM(RequestPerSecond) FROM SCHEMA("<namespace>", Host)
//
// with metricType AverageValue, so every pod has to publish its own request
// rate, tagged with a Host dimension, into that namespace — once per 60 s
// period (OTEL_METRIC_EXPORT_INTERVAL=60000 in that overlay), so the SUM of
// a period is the total rate. (The seed ran SELECT AVG(...) with KEDA's
// default AverageValue, which under-scales.) The original seed did this with an
// EventListener that called PutMetricData once per second per pod. Here the
// rate is derived from the OpenTelemetry HTTP server histogram that the
// service records anyway (otelhttp's http.server.request.duration) and pushed
// once per OTel export interval, in one batched PutMetricData call, by a
// metric.PeriodicReader that the caller creates (the reader, not this
// package, honours OTEL_METRIC_EXPORT_INTERVAL / OTEL_METRIC_EXPORT_TIMEOUT).
//
// The exporter is hand-written because there is no maintained Go
// OpenTelemetry exporter that writes CloudWatch metrics with PutMetricData:
// the OpenTelemetry Collector's awsemf exporter writes Embedded Metric Format
// log events to CloudWatch Logs instead, which needs a collector (or an
// agent) and a log group, and is not what this variant demonstrates.
//
// # What is published
//
// Each Export publishes exactly one datum
//
//	Namespace:  Config.Namespace            (default "MyApiNamespace")
//	MetricName: Config.MetricName           (default "RequestPerSecond")
//	Dimensions: [{Host, Config.Host}]       (default "local"; pass POD_NAME)
//	Unit:       Count/Second
//	Value:      requests in the window / window length in seconds
//	Timestamp:  end of the window
//
// The exporter asks the SDK for delta temporality, so each collection carries
// only the requests since the previous one and the data point's
// [StartTime, Time) is exactly that collection window.
//
// Create the reader as metric.NewPeriodicReader(exp) (optionally with
// WithInterval) and do not set WithMaxExportBatchSize: split batches would be
// exported separately, each publishing a partial rate (or a 0 for batches
// without the source metric).
//
// # Idle windows
//
// With delta temporality the SDK drops a stream that received no
// measurements in the window, so "no requests since the last export" shows
// up as the source metric being absent from the ResourceMetrics (or present
// without data points, as an external producer might send it). That is
// indistinguishable from "no request was ever made", and in both cases the
// true request rate of this pod is 0. The exporter therefore publishes 0
// (timestamped with the current time, since the window is unknown and does
// not matter for a zero rate) whenever the source metric is absent. This lets
// KEDA see the rate fall when traffic stops, and makes idle pods count in the
// per-pod AVG. The flip side is that a misspelled Config.SourceMetric also
// publishes a steady 0, so keep its default unless you changed the
// instrumentation.
package cwexporter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/keda-eks-samples/workloads/pkg/telemetry"
)

// Defaults applied by New to zero-valued Config fields.
const (
	DefaultNamespace    = "MyApiNamespace"
	DefaultMetricName   = "RequestPerSecond"
	DefaultHost         = "local"
	DefaultSourceMetric = telemetry.RequestDuration // otelhttp's histogram
)

// HostDimension is the name of the only dimension attached to the datum.
const HostDimension = "Host"

// Retry settings used by NewClient.
const (
	ClientMaxAttempts = 5
	ClientMaxBackoff  = 5 * time.Second
)

// CloudWatch limits (PutMetricData API reference).
const (
	maxNamespaceLen      = 255
	maxMetricNameLen     = 255
	maxDimensionValueLen = 1024
)

// PutMetricDataAPI is the subset of the CloudWatch client used by the
// exporter. *cloudwatch.Client satisfies it.
type PutMetricDataAPI interface {
	PutMetricData(ctx context.Context, params *cloudwatch.PutMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.PutMetricDataOutput, error)
}

var _ PutMetricDataAPI = (*cloudwatch.Client)(nil)

// Config configures an Exporter. Zero-valued string fields take the
// Default* values.
type Config struct {
	// Client publishes the data; required. Use NewClient to build one with
	// the recommended retry settings.
	Client PutMetricDataAPI
	// Namespace is the CloudWatch namespace.
	Namespace string
	// MetricName is the CloudWatch metric name.
	MetricName string
	// Host is the value of the Host dimension; the caller passes the pod
	// name (POD_NAME).
	Host string
	// SourceMetric is the OTel instrument whose count is turned into a rate:
	// a histogram (its data point Count is the number of requests) or a sum.
	SourceMetric string
}

// NewClient returns a CloudWatch client whose standard retryer makes up to
// ClientMaxAttempts attempts with exponential jittered backoff capped at
// ClientMaxBackoff. Throttling, 5xx and connection errors are retried by the
// SDK; the retry sleeps honour the context passed to Export. optFns are
// applied after the retryer is set, so they may override it. Note that an
// explicit AWS_MAX_ATTEMPTS / max_attempts in awsCfg still takes precedence
// over ClientMaxAttempts, as it does for every SDK client.
func NewClient(awsCfg aws.Config, optFns ...func(*cloudwatch.Options)) *cloudwatch.Client {
	fns := make([]func(*cloudwatch.Options), 0, len(optFns)+1)
	fns = append(fns, func(o *cloudwatch.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = ClientMaxAttempts
			so.MaxBackoff = ClientMaxBackoff
		})
	})
	fns = append(fns, optFns...)
	return cloudwatch.NewFromConfig(awsCfg, fns...)
}

// Exporter is a sdkmetric.Exporter that publishes the request rate of one
// source metric to CloudWatch. Create it with New.
type Exporter struct {
	client       PutMetricDataAPI
	namespace    string
	metricName   string
	host         string
	sourceMetric string

	// now timestamps the zero datum published when the source metric is
	// absent. It is a field (not a package variable) so tests can pin it.
	now func() time.Time

	shutdown atomic.Bool
}

var _ sdkmetric.Exporter = (*Exporter)(nil)

// New validates cfg, applies defaults and returns an Exporter.
func New(cfg Config) (*Exporter, error) {
	if cfg.Client == nil {
		return nil, errors.New("cwexporter: Config.Client is required")
	}
	e := &Exporter{
		client:       cfg.Client,
		namespace:    orDefault(cfg.Namespace, DefaultNamespace),
		metricName:   orDefault(cfg.MetricName, DefaultMetricName),
		host:         orDefault(cfg.Host, DefaultHost),
		sourceMetric: orDefault(cfg.SourceMetric, DefaultSourceMetric),
		now:          time.Now,
	}
	if err := validate(e.namespace, e.metricName, e.host, e.sourceMetric); err != nil {
		return nil, fmt.Errorf("cwexporter: invalid config: %w", err)
	}
	return e, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// validate checks the values against CloudWatch's documented constraints so
// that a misconfiguration fails at start-up instead of on every export.
func validate(namespace, metricName, host, sourceMetric string) error {
	var errs []error
	switch err := printableValue("namespace", namespace, maxNamespaceLen); {
	case err != nil:
		errs = append(errs, err)
	case strings.HasPrefix(namespace, ":"):
		errs = append(errs, fmt.Errorf("namespace %q must not start with ':'", namespace))
	case strings.HasPrefix(namespace, "AWS/"):
		errs = append(errs, fmt.Errorf("namespace %q: the AWS/ prefix is reserved for AWS services", namespace))
	}
	switch n := utf8.RuneCountInString(metricName); {
	case strings.TrimSpace(metricName) == "":
		errs = append(errs, errors.New("metric name must contain a non-whitespace character"))
	case n > maxMetricNameLen:
		errs = append(errs, fmt.Errorf("metric name is %d characters, CloudWatch allows at most %d", n, maxMetricNameLen))
	}
	if err := printableValue("host (Host dimension value)", host, maxDimensionValueLen); err != nil {
		errs = append(errs, err)
	}
	if strings.TrimSpace(sourceMetric) == "" {
		errs = append(errs, errors.New("source metric name must not be blank"))
	}
	return errors.Join(errs...)
}

// printableValue checks what CloudWatch asks of a namespace and of a
// dimension value: not blank, at most maxLen bytes, printable ASCII. what
// names the value in the error.
func printableValue(what, v string, maxLen int) error {
	switch {
	case strings.TrimSpace(v) == "":
		return fmt.Errorf("%s must contain a non-whitespace character", what)
	case len(v) > maxLen:
		return fmt.Errorf("%s is %d characters, CloudWatch allows at most %d", what, len(v), maxLen)
	case !printableASCII(v):
		return fmt.Errorf("%s %q must be printable ASCII", what, v)
	}
	return nil
}

// printableASCII reports whether s has only ASCII characters and no ASCII
// control characters, which CloudWatch rejects in namespaces and dimensions.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// Temporality returns delta for every instrument kind, so each export
// carries only what was recorded since the previous one.
func (*Exporter) Temporality(sdkmetric.InstrumentKind) metricdata.Temporality {
	return metricdata.DeltaTemporality
}

// Aggregation returns the SDK's default aggregation.
func (*Exporter) Aggregation(k sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	return sdkmetric.DefaultAggregationSelector(k)
}

// Export publishes the request rate found in rm with one PutMetricData call.
// See the package documentation for what is published when the source metric
// is absent. Nothing is published if the source data points carry no usable
// time window. Errors are returned (the periodic reader hands them to
// otel.Handle); the context's deadline bounds all retries.
func (e *Exporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if e.shutdown.Load() {
		return fmt.Errorf("cwexporter: %w", sdkmetric.ErrExporterShutdown)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("cwexporter: export: %w", err)
	}

	w, err := findWindow(rm, e.sourceMetric)
	if err != nil {
		return fmt.Errorf("cwexporter: %w", err)
	}
	var value float64
	ts := e.now()
	if w.points > 0 {
		var ok bool
		if value, ok = w.rate(); !ok {
			// No window to divide by (missing or zero-length timestamps);
			// the SDK does not produce this for delta data. Publishing a
			// guess would be worse than skipping one interval.
			return nil
		}
		ts = w.end
	}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		// CloudWatch rejects NaN and ±Inf.
		return fmt.Errorf("cwexporter: rate of %q is not finite: %v", e.sourceMetric, value)
	}
	_, err = e.client.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{
		Namespace: aws.String(e.namespace),
		MetricData: []types.MetricDatum{{
			MetricName: aws.String(e.metricName),
			Unit:       types.StandardUnitCountSecond,
			Dimensions: []types.Dimension{{Name: aws.String(HostDimension), Value: aws.String(e.host)}},
			Value:      aws.Float64(value),
			Timestamp:  aws.Time(ts),
		}},
	})
	if err != nil {
		return fmt.Errorf("cwexporter: PutMetricData %s: %w", e.namespace, err)
	}
	return nil
}

// ForceFlush is a no-op: the exporter holds no data between exports.
func (*Exporter) ForceFlush(ctx context.Context) error {
	return ctx.Err()
}

// Shutdown marks the exporter as shut down; later Export calls return an
// error wrapping sdkmetric.ErrExporterShutdown. It is idempotent.
func (e *Exporter) Shutdown(context.Context) error {
	e.shutdown.Store(true)
	return nil
}

// window is what one collection says about the source metric.
type window struct {
	points int           // data points of the source metric seen
	count  float64       // requests (histogram Count) or sum of Sum values
	width  time.Duration // widest StartTime..Time among the data points
	end    time.Time     // latest Time among the data points
}

// rate returns count per second of the window, or false if there is no
// positive window to divide by.
func (w window) rate() (float64, bool) {
	if w.width <= 0 {
		return 0, false
	}
	return w.count / w.width.Seconds(), true
}

// findWindow sums the source metric's data points across all scopes and
// attribute sets (routes, methods, status codes).
func findWindow(rm *metricdata.ResourceMetrics, name string) (window, error) {
	var w window
	if rm == nil {
		return w, nil
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			ok, err := addData[float64](&w, m.Data)
			if !ok {
				ok, err = addData[int64](&w, m.Data)
			}
			if !ok {
				err = fmt.Errorf("source metric %q has unsupported data type %T (want a histogram or sum)", name, m.Data)
			}
			if err != nil {
				return window{}, fmt.Errorf("source metric %q (scope %q): %w", name, sm.Scope.Name, err)
			}
		}
	}
	return w, nil
}

// errCumulative is returned for cumulative data, whose counts span the whole
// process lifetime and cannot be turned into a current rate. The exporter
// requests delta temporality, so this only happens with external producers.
var errCumulative = errors.New("cumulative temporality is not supported, the exporter needs delta data")

// addData adds data's points to the window if data is a histogram, an
// exponential histogram or a sum of N; ok is false for any other type.
func addData[N int64 | float64](w *window, data metricdata.Aggregation) (ok bool, err error) {
	switch d := data.(type) {
	case metricdata.Histogram[N]:
		return true, addPoints(w, d.Temporality, d.DataPoints, histogramPoint[N])
	case metricdata.ExponentialHistogram[N]:
		return true, addPoints(w, d.Temporality, d.DataPoints, expHistogramPoint[N])
	case metricdata.Sum[N]:
		return true, addPoints(w, d.Temporality, d.DataPoints, sumPoint[N])
	}
	return false, nil
}

// addPoints adds delta data points to the window; point reads one point's
// count and time span.
func addPoints[P any](w *window, t metricdata.Temporality, pts []P, point func(P) (float64, time.Time, time.Time)) error {
	if t != metricdata.DeltaTemporality {
		return errCumulative
	}
	for _, p := range pts {
		w.add(point(p))
	}
	return nil
}

func histogramPoint[N int64 | float64](p metricdata.HistogramDataPoint[N]) (float64, time.Time, time.Time) {
	return float64(p.Count), p.StartTime, p.Time
}

func expHistogramPoint[N int64 | float64](p metricdata.ExponentialHistogramDataPoint[N]) (float64, time.Time, time.Time) {
	return float64(p.Count), p.StartTime, p.Time
}

func sumPoint[N int64 | float64](p metricdata.DataPoint[N]) (float64, time.Time, time.Time) {
	return float64(p.Value), p.StartTime, p.Time
}

func (w *window) add(count float64, start, end time.Time) {
	w.points++
	w.count += count
	if end.After(w.end) {
		w.end = end
	}
	// StartTime is optional for sums; a zero one would yield a bogus
	// decades-long window.
	if start.IsZero() || end.IsZero() {
		return
	}
	if d := end.Sub(start); d > w.width {
		w.width = d
	}
}
