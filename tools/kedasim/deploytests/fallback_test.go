package deploytests

import (
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

// Every ScaledObject states its fallback and KEDA's own validation
// (v1alpha1.CheckFallbackValid, the admission webhook's) accepts it. While
// it falls back KEDA serves target x max(current, replicas) for an
// AverageValue trigger (pkg/fallback doFallback, v2.21.0), so the HPA
// holds what runs (deploy/README.md, "When something fails"); the e2e
// fault scenarios show it on the real KEDA and HPA.
func TestEveryScaledObjectFallsBackToWhatRuns(t *testing.T) {
	eachOverlay(t, func(t *testing.T, overlay string, objs []manifests.Object) {
		eachScaledObject(t, objs, func(o manifests.Object, so *kedav1alpha1.ScaledObject) {
			fb := so.Spec.Fallback
			if fb == nil {
				t.Errorf("%s: no fallback: an outage of its signal leaves the HPA without a metric", o)
				return
			}
			if err := kedav1alpha1.CheckFallbackValid(so); err != nil {
				t.Errorf("%s: KEDA refuses the fallback: %v", o, err)
			}
			if fb.Behavior != kedav1alpha1.FallbackBehaviorCurrentReplicasIfHigher || fb.Replicas < 1 {
				t.Errorf("%s: fallback %+v; want currentReplicasIfHigher with replicas >= 1 (static drops a loaded workload to replicas)", o, *fb)
			}
			for _, tr := range so.Spec.Triggers {
				if tr.MetricType != autoscalingv2.AverageValueMetricType {
					t.Errorf("%s: trigger %s is %s; the fallback arithmetic here is AverageValue's", o, tr.Type, tr.MetricType)
				}
			}
		})
	})
}
