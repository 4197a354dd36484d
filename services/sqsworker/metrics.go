package main

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// metrics are sqsworker's own instruments. KEDA scales this sample on the
// queue (aws-sqs-queue trigger), not on these; they show what each pod did.
type metrics struct {
	processed metric.Int64Counter
	failed    metric.Int64Counter
	inFlight  metric.Int64UpDownCounter
	duration  metric.Float64Histogram
	calls     metric.Int64Counter
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	m := mp.Meter("github.com/keda-eks-samples/workloads/services/sqsworker")
	var x metrics
	var errs [5]error
	x.processed, errs[0] = m.Int64Counter("sqsworker.messages.processed", metric.WithUnit("{message}"), metric.WithDescription("Messages processed and deleted."))
	x.failed, errs[1] = m.Int64Counter("sqsworker.messages.failed", metric.WithUnit("{message}"), metric.WithDescription("Messages whose processing failed; released for redelivery."))
	x.inFlight, errs[2] = m.Int64UpDownCounter("sqsworker.messages.in_flight", metric.WithUnit("{message}"), metric.WithDescription("Messages being processed now."))
	x.duration, errs[3] = m.Float64Histogram("messaging.process.duration", metric.WithUnit("s"), metric.WithDescription("Time to process one message."))
	x.calls, errs[4] = m.Int64Counter("sqsworker.sqs.calls", metric.WithUnit("{call}"), metric.WithDescription("SQS API calls by operation."))
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("create metrics: %w", err)
		}
	}
	return &x, nil
}

func (m *metrics) Processed(ctx context.Context, d time.Duration) {
	m.processed.Add(ctx, 1)
	m.duration.Record(ctx, d.Seconds())
}

func (m *metrics) Failed(ctx context.Context) { m.failed.Add(ctx, 1) }

func (m *metrics) InFlight(ctx context.Context, delta int64) { m.inFlight.Add(ctx, delta) }

func (m *metrics) sqsCall(op string) {
	m.calls.Add(context.Background(), 1, metric.WithAttributes(attribute.String("operation", op)))
}
