package deploytests

import (
	"context"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/scalers"
	autoscalingv2 "k8s.io/api/autoscaling/v2"

	"github.com/keda-eks-samples/workloads/pkg/testutil/svctest"
	"github.com/keda-eks-samples/workloads/tools/kedasim/kedascaler"
	"github.com/keda-eks-samples/workloads/tools/kedasim/manifests"
)

// triggers returns every trigger of every ScaledObject and ScaledJob in objs,
// with the TriggerAuthentication each one references (an unresolved
// reference is an error).
func triggers(t *testing.T, objs []manifests.Object) []manifests.Trigger {
	t.Helper()
	out, err := manifests.Triggers(objs)
	if err != nil {
		t.Error(err)
	}
	return out
}

// externalTarget is the HPA metric target KEDA generates for tr.
func externalTarget(t *testing.T, s scalers.Scaler) autoscalingv2.MetricTarget {
	t.Helper()
	target, err := kedascaler.ExternalTarget(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func TestEveryTriggerBuildsWithKedasOwnScalers(t *testing.T) {
	types := map[string]int{}
	eachOverlay(t, func(t *testing.T, _ string, objs []manifests.Object) {
		trs := triggers(t, objs)
		if len(trs) == 0 {
			t.Fatal("no trigger rendered")
		}
		for _, tr := range trs {
			types[tr.Spec.Type]++
			if tr.Spec.Metadata["awsRegion"] == "" {
				t.Errorf("%s: trigger %s without awsRegion", tr.Owner, tr.Spec.Type)
			}
			if tr.Auth == nil || tr.Auth.Spec.PodIdentity == nil || tr.Auth.Spec.PodIdentity.Provider != kedav1alpha1.PodIdentityProviderAws {
				t.Errorf("%s: trigger %s does not authenticate with podIdentity aws", tr.Owner, tr.Spec.Type)
			}
			s, err := kedascaler.BuildScaler(t.Context(), tr, nil)
			if err != nil {
				t.Errorf("%s: KEDA rejects the %s trigger: %v", tr.Owner, tr.Spec.Type, err)
				continue
			}
			_ = s.Close(context.Background())
		}
	})
	for _, typ := range []string{"aws-sqs-queue", "aws-cloudwatch", "prometheus"} {
		if types[typ] == 0 {
			t.Errorf("no %s trigger rendered", typ)
		}
	}
}

// TestKedaRejectsWhatItShould shows the constructors are a real check: the
// same rendered triggers with one key wrong fail.
func TestKedaRejectsWhatItShould(t *testing.T) {
	root := svctest.RepoRoot(t)
	cases := []struct {
		overlay, typ, key, value, wantErr string
	}{
		{"sqs-worker", "aws-sqs-queue", "queueLength", "five", "queueLength"},
		{"gateway", "aws-cloudwatch", "minMetricValue", "", "minMetricValue"},
		{"gateway", "aws-cloudwatch", "metricStatPeriod", "45", ""},
		{"amp", "prometheus", "threshold", "", "threshold"},
	}
	for _, c := range cases {
		t.Run(c.overlay+"/"+c.key, func(t *testing.T) {
			for _, tr := range triggers(t, renderOverlay(t, root, c.overlay)) {
				if tr.Spec.Type != c.typ {
					continue
				}
				md := map[string]string{}
				for k, v := range tr.Spec.Metadata {
					if k != c.key || c.value != "" {
						md[k] = v
					}
				}
				if c.value != "" {
					md[c.key] = c.value
				}
				tr.Spec.Metadata = md
				_, err := kedascaler.BuildScaler(t.Context(), tr, nil)
				if err == nil {
					t.Fatalf("KEDA accepted %s=%q", c.key, c.value)
				}
				if !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %q does not name %s", err, c.wantErr)
				}
				return
			}
			t.Fatalf("no %s trigger in %s", c.typ, c.overlay)
		})
	}
}
