package deploy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
)

// trigger is one rendered KEDA trigger with what its owner says about it.
type trigger struct {
	owner    string // ScaledObject/webapi
	kind     string // ScaledObject or ScaledJob
	name     string
	min, max int32
	spec     kedav1alpha1.ScaleTriggers
	auth     *kedav1alpha1.TriggerAuthentication
}

// triggers returns every trigger of every ScaledObject and ScaledJob in objs,
// with the TriggerAuthentication each one references (an unresolved
// reference is an error).
func triggers(t *testing.T, objs []object) []trigger {
	t.Helper()
	auths := map[string]*kedav1alpha1.TriggerAuthentication{}
	for _, o := range objs {
		if o.Kind == "TriggerAuthentication" {
			v, err := decodeStrict(o)
			if err != nil {
				t.Fatal(err)
			}
			auths[o.Name] = v.(*kedav1alpha1.TriggerAuthentication)
		}
	}
	var out []trigger
	add := func(o object, min, max int32, ts []kedav1alpha1.ScaleTriggers) {
		for _, tr := range ts {
			tg := trigger{owner: o.String(), kind: o.Kind, name: o.Name, min: min, max: max, spec: tr}
			if ref := tr.AuthenticationRef; ref != nil {
				if tg.auth = auths[ref.Name]; tg.auth == nil {
					t.Errorf("%s: TriggerAuthentication %q is not in the overlay", o, ref.Name)
				}
			}
			out = append(out, tg)
		}
	}
	for _, o := range objs {
		v, err := decodeStrict(o)
		if err != nil {
			continue
		}
		switch w := v.(type) {
		case *kedav1alpha1.ScaledObject:
			add(o, deref(w.Spec.MinReplicaCount, 0), deref(w.Spec.MaxReplicaCount, 100), w.Spec.Triggers)
		case *kedav1alpha1.ScaledJob:
			add(o, deref(w.Spec.MinReplicaCount, 0), deref(w.Spec.MaxReplicaCount, 100), w.Spec.Triggers)
		}
	}
	return out
}

func deref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// buildScaler builds tr with KEDA v2.21's own scaler constructor for its
// type, as the operator would (pkg/scaling/scalers_builder.go), with the
// metadata exactly as rendered. Only the address of a local server may be
// overridden (serverAddress, awsEndpoint, and queueURL because the SQS
// emulator matches whole queue URLs); everything else is what ships.
func buildScaler(t *testing.T, tr trigger, override map[string]string) (scalers.Scaler, error) {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	md := map[string]string{}
	for k, v := range tr.spec.Metadata {
		md[k] = v
	}
	for k, v := range override {
		md[k] = v
	}
	metricType := tr.spec.MetricType
	if metricType == "" {
		metricType = autoscalingv2.AverageValueMetricType // KEDA's default
	}
	cfg := &scalersconfig.ScalerConfig{
		ScalableObjectName:      tr.name,
		ScalableObjectNamespace: "keda-samples",
		ScalableObjectType:      tr.kind,
		GlobalHTTPTimeout:       3 * time.Second,
		TriggerType:             tr.spec.Type,
		TriggerMetadata:         md,
		ResolvedEnv:             map[string]string{},
		AuthParams:              map[string]string{},
		MetricType:              metricType,
		AsMetricSource:          tr.kind == "ScaledObject",
	}
	if tr.auth != nil && tr.auth.Spec.PodIdentity != nil {
		cfg.PodIdentity = *tr.auth.Spec.PodIdentity
	}
	ctx := context.Background()
	switch tr.spec.Type {
	case "aws-sqs-queue":
		return scalers.NewAwsSqsQueueScaler(ctx, cfg)
	case "aws-cloudwatch":
		return scalers.NewAwsCloudwatchScaler(ctx, cfg)
	case "prometheus":
		return scalers.NewPrometheusScaler(cfg)
	}
	return nil, fmt.Errorf("trigger type %q: no scaler wired in this test", tr.spec.Type)
}

// externalTarget is the HPA metric target KEDA generates for tr.
func externalTarget(t *testing.T, s scalers.Scaler) autoscalingv2.MetricTarget {
	t.Helper()
	specs := s.GetMetricSpecForScaling(context.Background())
	if len(specs) != 1 || specs[0].External == nil {
		t.Fatalf("metric specs %+v, want one External", specs)
	}
	return specs[0].External.Target
}

func TestEveryTriggerBuildsWithKedasOwnScalers(t *testing.T) {
	types := map[string]int{}
	eachOverlay(t, func(t *testing.T, _ string, objs []object) {
		trs := triggers(t, objs)
		if len(trs) == 0 {
			t.Fatal("no trigger rendered")
		}
		for _, tr := range trs {
			types[tr.spec.Type]++
			if tr.spec.Metadata["awsRegion"] == "" {
				t.Errorf("%s: trigger %s without awsRegion", tr.owner, tr.spec.Type)
			}
			if tr.auth == nil || tr.auth.Spec.PodIdentity == nil || tr.auth.Spec.PodIdentity.Provider != kedav1alpha1.PodIdentityProviderAws {
				t.Errorf("%s: trigger %s does not authenticate with podIdentity aws", tr.owner, tr.spec.Type)
			}
			s, err := buildScaler(t, tr, nil)
			if err != nil {
				t.Errorf("%s: KEDA rejects the %s trigger: %v", tr.owner, tr.spec.Type, err)
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
	root := repoRoot(t)
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
				if tr.spec.Type != c.typ {
					continue
				}
				md := map[string]string{}
				for k, v := range tr.spec.Metadata {
					if k != c.key || c.value != "" {
						md[k] = v
					}
				}
				if c.value != "" {
					md[c.key] = c.value
				}
				tr.spec.Metadata = md
				_, err := buildScaler(t, tr, nil)
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
