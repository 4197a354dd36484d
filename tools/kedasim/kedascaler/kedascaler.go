// Package kedascaler builds a rendered KEDA trigger with KEDA v2.21's own
// scaler constructors, as the operator would, and polls it as KEDA's scale
// loop does: the metric and the HPA target KEDA would hand the HPA.
package kedascaler

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

// BuildScaler builds tr with KEDA v2.21's own scaler constructor for its
// type, as the operator would (pkg/scaling/scalers_builder.go), with the
// metadata exactly as rendered. Only the address of a local server may be
// overridden (serverAddress, awsEndpoint, and queueURL because the SQS
// emulator matches whole queue URLs); everything else is what ships. The
// AWS scalers resolve podIdentity aws through the SDK's default chain: the
// caller sets the environment it should find (and AWS_EC2_METADATA_DISABLED).
func BuildScaler(ctx context.Context, tr manifests.Trigger, override map[string]string) (scalers.Scaler, error) {
	md := map[string]string{} // Metadata may be nil
	maps.Copy(md, tr.Spec.Metadata)
	maps.Copy(md, override)
	metricType := cmp.Or(tr.Spec.MetricType, autoscalingv2.AverageValueMetricType) // KEDA's default
	cfg := &scalersconfig.ScalerConfig{
		ScalableObjectName:      tr.Name,
		ScalableObjectNamespace: "keda-samples",
		ScalableObjectType:      tr.Kind,
		GlobalHTTPTimeout:       3 * time.Second,
		TriggerType:             tr.Spec.Type,
		TriggerMetadata:         md,
		ResolvedEnv:             map[string]string{},
		AuthParams:              map[string]string{},
		MetricType:              metricType,
		AsMetricSource:          tr.Kind == "ScaledObject",
	}
	if tr.Auth != nil && tr.Auth.Spec.PodIdentity != nil {
		cfg.PodIdentity = *tr.Auth.Spec.PodIdentity
	}
	switch tr.Spec.Type {
	case "aws-sqs-queue":
		return scalers.NewAwsSqsQueueScaler(ctx, cfg)
	case "aws-cloudwatch":
		return scalers.NewAwsCloudwatchScaler(ctx, cfg)
	case "prometheus":
		return scalers.NewPrometheusScaler(cfg)
	}
	return nil, fmt.Errorf("trigger type %q: no scaler wired here", tr.Spec.Type)
}

// ExternalTarget is the HPA metric target KEDA generates for s.
func ExternalTarget(ctx context.Context, s scalers.Scaler) (autoscalingv2.MetricTarget, error) {
	specs := s.GetMetricSpecForScaling(ctx)
	if len(specs) != 1 || specs[0].External == nil {
		return autoscalingv2.MetricTarget{}, fmt.Errorf("metric specs %+v, want one External", specs)
	}
	return specs[0].External.Target, nil
}

// Reading is one poll of a trigger by KEDA's scaler.
type Reading struct {
	Value  float64
	Active bool
}

// Poll reads the scaler's one metric as KEDA's scale loop does each
// pollingInterval (GetMetricsAndActivity with the name from its spec).
func Poll(ctx context.Context, s scalers.Scaler) (Reading, error) {
	name := s.GetMetricSpecForScaling(ctx)[0].External.Metric.Name
	ms, active, err := s.GetMetricsAndActivity(ctx, name)
	if err != nil {
		return Reading{}, err
	}
	if len(ms) != 1 {
		return Reading{}, fmt.Errorf("KEDA returned %d metrics, want 1: %v", len(ms), ms)
	}
	return Reading{Value: ms[0].Value.AsApproximateFloat64(), Active: active}, nil
}
