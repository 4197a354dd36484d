// Package scalemath is the replica arithmetic KEDA hands to Kubernetes: the
// HPA controller's recommendation for an External metric and KEDA's
// ScaledJob executor's Job count, written out from their sources.
package scalemath

import (
	"math"
	"strconv"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// HPATolerance is the HPA controller's default --horizontal-pod-autoscaler-tolerance.
const HPATolerance = 0.1

// HPADesired is one recommendation of the HPA controller for an External
// metric (k8s.io/kubernetes pkg/controller/podautoscaler/replica_calculator.go,
// GetExternalPerPodMetricReplicas and GetExternalMetricReplicas), written
// out because that package is not importable as a library:
//
//	AverageValue: ratio = metric / (target x current); desired = ceil(metric / target)
//	Value:        ratio = metric / target;            desired = ceil(ratio x current)
//
// and within the tolerance (|ratio - 1| <= 0.1) the current count is kept.
// current stands for the ready pods (Value) and the scale's status.replicas
// (AverageValue's tolerance), which the controller uses: they differ only
// while pods take longer than a sync to become ready. The local cluster's
// TestHPAModelMatchesTheRealController checks it against the real
// kube-controller-manager.
func HPADesired(target autoscalingv2.MetricTarget, metric float64, current int32) int32 {
	switch target.Type {
	case autoscalingv2.AverageValueMetricType:
		t := target.AverageValue.AsApproximateFloat64()
		if math.Abs(metric/(t*float64(current))-1) <= HPATolerance {
			return current
		}
		return int32(math.Ceil(metric / t))
	case autoscalingv2.ValueMetricType:
		ratio := metric / target.Value.AsApproximateFloat64()
		if math.Abs(ratio-1) <= HPATolerance {
			return current
		}
		return int32(math.Ceil(ratio * float64(current)))
	}
	panic("metric target type " + string(target.Type))
}

// Clamp is n within lo..hi.
func Clamp(n, lo, hi int32) int32 { return max(lo, min(n, hi)) }

// JobDecision is KEDA v2.21's ScaledJob executor deciding how many Jobs to
// create in one poll, reproduced here because it is unexported and its
// package cannot be imported cheaply: pkg/scaling/executor imports
// pkg/scaling/resolver, which brings the HashiCorp Vault, GCP Secret
// Manager, Azure Key Vault and AWS Secrets Manager SDKs into this module.
// The metric side (CalculateQueueLengthAndMaxValue, IsScaledJobActive) is
// called from KEDA itself. Line by line, pkg/scaling/executor/scale_jobs.go
// of v2.21.0:
//
//	L55-59   RequestJobScale: effectiveMaxScale, scaleTo := getScalingDecision(...); negative -> 0
//	L61-64   only when isActive: createJobs(scaleTo, effectiveMaxScale)
//	L110-122 getScalingDecision: fewer running than min -> min - running; else the
//	         strategy's GetEffectiveMaxScale(maxScale, running - min, pending, MaxReplicaCount(), scaleTo)
//	L124-133 createJobs: none when maxScale <= 0; scaleTo capped at maxScale
//	L448-475 NewScalingStrategy: custom (unparsable percentage -> default), accurate, eager, else default
//	L484-525 GetEffectiveMaxScale of default, custom, accurate, eager
//
// scaleTo and maxScale are IsScaledJobActive's ceil(queueLength) and
// ceil(maxValue) (pkg/scaling/scale_handler.go L512-514).
func JobDecision(sj *kedav1alpha1.ScaledJob, isActive bool, running, pending, scaleTo, maxScale int64) int64 {
	if !isActive {
		return 0
	}
	minReplicas, maxReplicas := sj.MinReplicaCount(), sj.MaxReplicaCount()
	var effective int64
	if running < minReplicas {
		scaleTo, effective = minReplicas-running, minReplicas-running
	} else {
		effective, scaleTo = EffectiveMaxScale(sj.Spec.ScalingStrategy, maxScale, running-minReplicas, pending, maxReplicas, scaleTo)
	}
	if effective <= 0 {
		return 0
	}
	return min(scaleTo, effective)
}

// EffectiveMaxScale is NewScalingStrategy(...).GetEffectiveMaxScale(...)
// (scale_jobs.go L448-525), one case per strategy type.
func EffectiveMaxScale(st kedav1alpha1.ScalingStrategy, maxScale, running, pending, maxReplicas, scaleTo int64) (int64, int64) {
	switch st.Strategy {
	case "custom":
		pct, err := strconv.ParseFloat(st.CustomScalingRunningJobPercentage, 64)
		if err != nil {
			return maxScale - running, scaleTo // falls back to default
		}
		var deduction int64
		if st.CustomScalingQueueLengthDeduction != nil {
			deduction = int64(*st.CustomScalingQueueLengthDeduction)
		}
		return min(maxScale-deduction-int64(float64(running)*pct), maxReplicas), scaleTo
	case "accurate":
		if maxScale+running-pending > maxReplicas {
			return maxReplicas - running, scaleTo
		}
		return maxScale - pending, scaleTo
	case "eager":
		return min(maxReplicas-running-pending, maxScale), maxReplicas
	default:
		return maxScale - running, scaleTo
	}
}

// TargetString is a metric target's value as written in the trigger.
func TargetString(t autoscalingv2.MetricTarget) string {
	if t.AverageValue != nil {
		return t.AverageValue.String()
	}
	if t.Value != nil {
		return t.Value.String()
	}
	return "?"
}
